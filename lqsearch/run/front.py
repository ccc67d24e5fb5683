"""The study of a Pareto search: which K points of the final front are final-trained, and how they are labelled.

With `search.selection: pareto` the search returns a front, not one winner. The
study final-trains `final.front_points` (K) of its points, chosen here:

- the front is the non-dominated set of the COMPLETED trials on the search's two
  objectives (accuracy, max; the cost `search.objectives[1]`, min), sorted by cost
  ascending; trials with the same genome, or the same accuracy and cost, count once
  (the earliest);
- K points are spread evenly by cost RANK along it: positions
  round(i * (n - 1) / (K - 1)), i = 0..K-1, so both ends (the cheapest and the most
  accurate point) are always in, and the others split the front's points into equal
  runs (by rank, not by cost value, which would crowd the points where the front is
  dense in cost). A front of at most K points is taken whole.

The points are labelled "Front i/K" by cost rank (1 = cheapest). The table lists them
winner first: the point with the best search fitness (the run's `final/` model, the
row every "FLOPs / winner" ratio refers to), then the others by cost.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from lqsearch.search.selection import non_dominated_ranks

__all__ = ["front", "spread", "front_points", "study_order"]


def _scored(record: Mapping[str, Any], cost: str) -> bool:
    return (record.get("status") == "COMPLETED" and record.get("accuracy") is not None
            and record.get(cost) is not None)


def front(records: Sequence[Mapping[str, Any]], cost: str = "flops") -> List[Mapping[str, Any]]:
    """The non-dominated COMPLETED trials on (accuracy max, `cost` min), cost ascending, one per genome and
    per (accuracy, cost) pair (the earliest trial).

    Arguments:
        records: trial records (`results.json` "trials": status, genome, accuracy and the cost metric).
        cost: the cost metric's name (`flops`, `memory_bits` or `latency_s`).

    Returns:
        The front's records, sorted by cost (then accuracy descending, then trial order).
    """
    scored, genomes = [], set()
    for record in records:
        key = repr(sorted(dict(record.get("genome") or {}).items()))
        if _scored(record, cost) and key not in genomes:
            genomes.add(key)
            scored.append(record)
    if not scored:
        return []
    ranks = non_dominated_ranks([(r["accuracy"], r[cost]) for r in scored], ("max", "min"))
    order = sorted((i for i, rank in enumerate(ranks) if rank == 0),
                   key=lambda i: (scored[i][cost], -scored[i]["accuracy"], i))
    points, seen = [], set()
    for i in order:  # equal objective values: one point, the earliest trial
        if (scored[i]["accuracy"], scored[i][cost]) not in seen:
            seen.add((scored[i]["accuracy"], scored[i][cost]))
            points.append(scored[i])
    return points


def spread(n: int, k: int) -> List[int]:
    """K indices spread evenly over ranks 0..n-1, both ends included (all n when n <= k).

    Arguments:
        n: the number of front points.
        k: how many to choose (>= 2).

    Returns:
        Sorted distinct indices: round(i * (n - 1) / (k - 1)) for i in 0..k-1 (round half to even).
    """
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def front_points(records: Sequence[Mapping[str, Any]], k: int, cost: str = "flops") -> List[Mapping[str, Any]]:
    """The K front points the study trains (see the module docstring), cost ascending."""
    points = front(records, cost)
    return [points[i] for i in spread(len(points), k)]


def study_order(points: Sequence[Mapping[str, Any]]) -> Tuple[List[Mapping[str, Any]], List[str]]:
    """The points winner first (best search fitness, ties to the cheaper), then by cost; and their labels.

    Arguments:
        points: from `front_points`, cost ascending.

    Returns:
        (records in table order, labels "Front i/K" with i the cost rank, 1 = cheapest).
    """
    labels: Dict[int, str] = {id(point): f"Front {i + 1}/{len(points)}" for i, point in enumerate(points)}
    if not points:
        return [], []
    fitness = [p.get("fitness") if p.get("fitness") is not None else float("-inf") for p in points]
    winner = max(range(len(points)), key=lambda i: (fitness[i], -i))
    ordered = [points[winner]] + [p for i, p in enumerate(points) if i != winner]
    return ordered, [labels[id(p)] for p in ordered]
