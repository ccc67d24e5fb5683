"""Who breeds: the parent ranking of `EvolutionaryOracle`, by fitness or by NSGA-II's Pareto ranking.

A selection ranks the COMPLETED, scored trials best first; the top-K of that
ranking are the parents (`num_parents`), for both schedules of `generations`.

- `FitnessSelection` ("fitness", the default): by the oracle's objective
  (`trial.score`), ties to the older trial.
- `ParetoSelection` ("pareto"): by NSGA-II's order over several objectives
  read from each trial's metrics (e.g. accuracy "max" and flops "min"): first
  the non-domination rank (front 0 is the Pareto set of the trials, front 1
  the Pareto set of the rest, ...), then, within a front, the crowding
  distance, largest first (the boundary points of a front are infinitely
  far, so the extremes of the front always breed), then the older trial.
  A trial is scored only when every objective is a finite number; the
  oracle fails a trial that reports less.

A point dominates another when it is no worse on every objective and better on
at least one; equal points do not dominate each other, so they share a front.

Both are stateless (the ranking is a function of the trials), so chief,
workers and a resumed search agree; `key()` names the ranking in the oracle's
state, so a project reloaded with another selection re-ranks its parents.

References:
    - Deb, Pratap, Agarwal, Meyarivan. A fast and elitist multiobjective
      genetic algorithm: NSGA-II. IEEE Transactions on Evolutionary
      Computation 6(2), 2002 (fast non-dominated sorting, crowding distance).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from keras_tuner.engine import trial as trial_module

__all__ = ["non_dominated_ranks", "crowding_distances", "nsga2_order", "FitnessSelection", "ParetoSelection",
           "make_selection", "scored"]

_COMPLETED = trial_module.TrialStatus.COMPLETED


def _as_minimized(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """The points as an (n, m) array where every objective is minimized ("max" objectives negated)."""
    points = np.asarray(values, dtype=float).reshape(len(values), len(directions))
    signs = np.array([-1.0 if direction == "max" else 1.0 for direction in directions])
    return points * signs


def non_dominated_ranks(values: Sequence[Sequence[float]], directions: Sequence[str]) -> List[int]:
    """The non-domination rank of each point: 0 for the Pareto front, 1 for the front of the rest, ...

    Deb et al.'s fast non-dominated sort (O(m n^2) comparisons, done as array operations).

    Arguments:
        values: n points, each a sequence of m finite objective values.
        directions: m directions, "max" or "min", one per objective.
    Returns:
        A list of n ints.
    """
    if not len(values):
        return []
    points = _as_minimized(values, directions)
    no_worse = (points[:, None, :] <= points[None, :, :]).all(axis=-1)
    better = (points[:, None, :] < points[None, :, :]).any(axis=-1)
    dominates = no_worse & better  # dominates[i, j]: point i dominates point j
    dominated_by = dominates.sum(axis=0)
    ranks = np.full(len(points), -1)
    front, rank = np.flatnonzero(dominated_by == 0), 0
    while front.size:
        ranks[front] = rank
        dominated_by = dominated_by - dominates[front].sum(axis=0)
        dominated_by[ranks >= 0] = -1  # ranked points never come back
        front, rank = np.flatnonzero(dominated_by == 0), rank + 1
    return [int(rank) for rank in ranks]


def crowding_distances(values: Sequence[Sequence[float]], directions: Sequence[str]) -> List[float]:
    """The crowding distance of each point of ONE front (Deb et al., section III-B).

    Per objective, the points are sorted (ties keep their input order); the
    first and last get an infinite distance, every other point adds the
    distance between its two neighbours divided by the objective's range (an
    objective with a zero range adds nothing).

    Arguments:
        values: the points of a front, each a sequence of finite objective values.
        directions: "max" or "min" per objective.
    Returns:
        A list of floats (`math.inf` for boundary points; all of them when the front has <= 2 points).
    """
    count = len(values)
    if count <= 2:
        return [math.inf] * count
    points = _as_minimized(values, directions)
    distances = np.zeros(count)
    for objective in range(points.shape[1]):
        order = np.argsort(points[:, objective], kind="stable")
        ordered = points[order, objective]
        distances[order[0]] = distances[order[-1]] = math.inf
        span = ordered[-1] - ordered[0]
        if span > 0:
            distances[order[1:-1]] += (ordered[2:] - ordered[:-2]) / span
    return [float(distance) for distance in distances]


def nsga2_order(values: Sequence[Sequence[float]], directions: Sequence[str]) -> List[int]:
    """Indices of the points in NSGA-II's order: rank ascending, crowding distance descending, then index.

    Arguments:
        values: n points, in creation order (the index breaks the last ties: older first).
        directions: "max" or "min" per objective.
    """
    ranks = non_dominated_ranks(values, directions)
    crowding = [0.0] * len(values)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for i, distance in zip(members, crowding_distances([values[i] for i in members], directions)):
            crowding[i] = distance
    return sorted(range(len(values)), key=lambda i: (ranks[i], -crowding[i], i))


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def scored(trials: Dict[str, trial_module.Trial]) -> List[str]:
    """Ids of the COMPLETED trials with a finite score (the population a selection ranks)."""
    return [t for t, trial in trials.items() if trial.status == _COMPLETED and _finite(trial.score)]


class FitnessSelection:
    """Ranks by the oracle's objective (`trial.score`), best first, ties to the older trial.

    Arguments:
        direction: "max" or "min", the direction of the oracle's objective.
    """

    name = "fitness"

    def __init__(self, direction: str):
        self.direction = direction

    def key(self) -> str:
        """What the ranking depends on, as stored in the oracle's state."""
        return self.name

    def missing(self, trial) -> List[str]:
        """Objectives the trial lacks to be ranked (the score decides here: nothing more)."""
        return []

    def rank(self, trials: Dict[str, trial_module.Trial], index_of: Callable[[str], int]) -> List[str]:
        """Ids of the scored completed trials, best first."""
        sign = -1.0 if self.direction == "max" else 1.0
        return [t for _, _, t in sorted((sign * trials[t].score, index_of(t), t) for t in scored(trials))]

    def top_k(self, trials, k: int, index_of) -> List[str]:
        """The first `k` of `rank`."""
        return self.rank(trials, index_of)[:k]


class ParetoSelection(FitnessSelection):
    """Ranks by NSGA-II's order over `objectives` read from the trials' metrics (last reported value).

    Arguments:
        objectives: `keras_tuner.Objective`s (name and direction), at least two.
    """

    name = "pareto"

    def __init__(self, objectives):
        super().__init__("max")
        self.objectives = tuple(objectives)

    def key(self) -> str:
        return "pareto:" + ",".join(f"{o.name}:{o.direction}" for o in self.objectives)

    def values(self, trial) -> Optional[List[float]]:
        """The trial's objective values, or None when one is missing or not finite."""
        values = []
        for objective in self.objectives:
            value = trial.metrics.get_last_value(objective.name) if trial.metrics.exists(objective.name) else None
            if not _finite(value):
                return None
            values.append(float(value))
        return values

    def missing(self, trial) -> List[str]:
        """Names of the objectives the trial did not report as a finite number."""
        return [o.name for o in self.objectives
                if not (trial.metrics.exists(o.name) and _finite(trial.metrics.get_last_value(o.name)))]

    def rank(self, trials, index_of) -> List[str]:
        """Ids of the scored completed trials with every objective, in NSGA-II's order."""
        ids = sorted(scored(trials), key=lambda t: (index_of(t), t))
        points = {t: self.values(trials[t]) for t in ids}
        ids = [t for t in ids if points[t] is not None]
        order = nsga2_order([points[t] for t in ids], [o.direction for o in self.objectives])
        return [ids[i] for i in order]


def make_selection(settings, objective) -> FitnessSelection:
    """The selection named by `settings.selection`; `objective` is the oracle's (for "fitness")."""
    if settings.selection == "pareto":
        return ParetoSelection(settings.objectives)
    return FitnessSelection(getattr(objective, "direction", "max") or "max")
