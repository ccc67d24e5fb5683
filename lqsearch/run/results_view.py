"""Read-only views of a run's `results.json`: rankings, the Pareto set, per-generation curves, table cells.

Shared by the markdown report (`lqsearch.run.report`) and the plots (`lqsearch.run.plots`).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lqsearch.search.pareto import pareto_front

__all__ = ["front_by_generation", "cost_of",
           "best_per_generation", "median_per_generation", "completed", "ranked", "plottable", "pareto_trials",
           "table", "number", "mflops", "ratio", "kib", "genome_text", "one_line", "MISSING", "STATUSES", "TOP_K"]

STATUSES = ("COMPLETED", "FAILED", "INVALID")
TOP_K = 5
MISSING = "n/a"


def cost_of(results: Mapping[str, Any]) -> str:
    """The cost metric a run's front is drawn on: its Pareto objectives' cost (`results["objectives"]`), else flops."""
    objectives = results.get("objectives") or ()
    return str(objectives[1]) if len(objectives) > 1 else "flops"


def front_by_generation(trials: Iterable[Mapping[str, Any]], cost: str = "flops"
                        ) -> List[Tuple[int, List[Mapping[str, Any]]]]:
    """[(generation g, the front of the COMPLETED trials of generations <= g)], by generation.

    The front is the non-dominated set on (accuracy max, `cost` min), sorted by cost (`pareto_front`).
    Trials without a generation, an accuracy or the cost are left out; generations without a
    completed trial too.
    """
    usable = [t for t in trials if t.get("status") == "COMPLETED" and t.get("generation") is not None
              and t.get("accuracy") is not None and t.get(cost) is not None]
    curve = []
    for generation in sorted({int(t["generation"]) for t in usable}):
        so_far = {str(t["trial_id"]): t for t in usable if int(t["generation"]) <= generation}
        keys = pareto_front((key, t["accuracy"], t[cost]) for key, t in so_far.items())
        curve.append((generation, [so_far[key] for key in keys]))
    return curve


def median_per_generation(trials: Iterable[Mapping[str, Any]]) -> List[Tuple[int, float]]:
    """[(generation, median fitness of that generation's COMPLETED trials)], by generation."""
    by_generation = {}
    for trial in completed(trials):
        if trial.get("generation") is not None:
            by_generation.setdefault(int(trial["generation"]), []).append(float(trial["fitness"]))
    return [(g, float(np.median(values))) for g, values in sorted(by_generation.items())]


def best_per_generation(trials: Iterable[Mapping[str, Any]]) -> List[Tuple[int, float]]:
    """[(generation, best fitness so far)] over COMPLETED trials with a fitness, by generation.

    The best fitness of a generation includes every earlier generation. Generations
    without a completed trial are left out.
    """
    best_in = {}
    for trial in completed(trials):
        if trial.get("generation") is None:
            continue
        generation = int(trial["generation"])
        best_in[generation] = max(best_in.get(generation, -math.inf), float(trial["fitness"]))
    curve, best = [], -math.inf
    for generation in sorted(best_in):
        best = max(best, best_in[generation])
        curve.append((generation, best))
    return curve


def completed(trials: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The COMPLETED trials that have a fitness (the ones that can be ranked)."""
    return [t for t in trials if t.get("status") == "COMPLETED" and t.get("fitness") is not None]


def ranked(trials: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Completed trials, best fitness first; ties go to fewer FLOPs, then to the trial id."""
    return sorted(
        completed(trials),
        key=lambda t: (-t["fitness"], t.get("flops") if t.get("flops") is not None else math.inf, str(t["trial_id"])),
    )


def plottable(trials: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """COMPLETED trials with both an accuracy and a FLOPs count."""
    return [
        t for t in trials
        if t.get("status") == "COMPLETED" and t.get("accuracy") is not None and t.get("flops") is not None
    ]


def pareto_trials(results: Mapping[str, Any]) -> Tuple[List[Mapping[str, Any]], List[str]]:
    """The Pareto trials, sorted by FLOPs, and the ids listed in `results["pareto"]` that are unknown.

    Uses the runner's `results["pareto"]` when present, else computes the front of
    the completed trials.
    """
    candidates = {str(t["trial_id"]): t for t in plottable(results.get("trials", []))}
    listed = results.get("pareto")
    if listed is None:
        listed = pareto_front((key, t["accuracy"], t["flops"]) for key, t in candidates.items())
    unknown = [str(key) for key in listed if str(key) not in candidates]
    chosen = [candidates[str(key)] for key in listed if str(key) in candidates]
    return sorted(chosen, key=lambda t: (t["flops"], -t["accuracy"])), unknown


def number(value: Optional[float], digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def mflops(flops: Optional[float]) -> str:
    return MISSING if flops is None else f"{flops / 1e6:.2f}"


def ratio(flops: Optional[float], reference: Optional[float]) -> str:
    return MISSING if flops is None or not reference else f"{flops / reference:.3f}"


def kib(bits: Optional[float]) -> str:
    return MISSING if bits is None else f"{bits / 8 / 1024:.1f}"


def gene_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def genome_text(space, genome: Mapping[str, Any]) -> str:
    """`[0.5, 2, 1, 1, 1, 0.5]`: the genome's values in the space's gene (paper) order."""
    return "[" + ", ".join(gene_value(v) for v in space.genome(genome).values()) + "]"


def _cell(value: Any) -> str:
    return one_line(value).replace("|", "\\|")


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


