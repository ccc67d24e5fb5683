"""`ConstrainedRandomSearch`: uniform random genomes under a constraint, the baseline of an evolution.

Phan et al. compare their searched MobileNets with a "Random Group" row: the
best of randomly drawn group combinations under the same FLOPs ceiling. The
study stage runs this oracle with the evolution's evaluation, ceiling and
number of evaluated candidates, and final-trains its best genome.

References:
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Table 2, "Random Group").
"""
from typing import Callable, Dict, Optional

from keras_tuner import oracles
from keras_tuner.engine import trial as trial_module

from lqsearch.checks import check_int

__all__ = ["ConstrainedRandomSearch"]


class ConstrainedRandomSearch(oracles.RandomSearchOracle):
    """Keras Tuner's random search that proposes only genomes satisfying `constraint`.

    A genome is never proposed twice (Keras Tuner's own record of tried values, which
    also holds the rejected ones, so they are never drawn again).

    Arguments:
        constraint: optional callable `values dict -> bool` checked before a trial exists.
        max_sampling_attempts: draws allowed to find one genome that satisfies it; the
            search stops (with `stop_reason`) after that many in a row.
        **kwargs: as for `keras_tuner.oracles.RandomSearchOracle` (objective, max_trials, seed, ...).

    Raises:
        ValueError: on a non-callable constraint or a bad number of attempts.
    """

    def __init__(self, *, constraint: Optional[Callable[[Dict], bool]] = None, max_sampling_attempts: int = 1000,
                 **kwargs):
        if constraint is not None and not callable(constraint):
            raise ValueError(f"constraint must be None or a callable (values dict) -> bool, got {constraint!r}.")
        super().__init__(**kwargs)
        self.constraint = constraint
        self.max_sampling_attempts = check_int("max_sampling_attempts", max_sampling_attempts, minimum=1)
        self.stop_reason: Optional[str] = None

    def populate_space(self, trial_id):
        """A new random genome within the constraint, or STOPPED when none was found (`stop_reason`)."""
        for _ in range(self.max_sampling_attempts):
            values = self._random_values()
            if values is None:
                self.stop_reason = "ConstrainedRandomSearch: the search space is exhausted."
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}
            if self.constraint is None or self.constraint(dict(values)):
                return {"status": trial_module.TrialStatus.RUNNING, "values": values}
        self.stop_reason = (f"ConstrainedRandomSearch: no genome satisfying the constraint in "
                            f"{self.max_sampling_attempts} draws; relax the constraint.")
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}
