"""Warm starts of `EvolutionaryOracle`: scored trials it did not breed join the population.

Trials the oracle finds without a birth record (an earlier search in the same
project, e.g. a random search or another oracle) or that the user adds with
`add_trial` (genomes run elsewhere, with their metrics) are recorded with
origin "external" in the generation open when they arrive, and rank and breed
like any other once scored (see `generations`). They are real trials of the
project: a trial file, a lineage entry in `oracle.json` (written first, as for
a bred trial), and they count towards `max_trials`.
"""
import logging

import keras_tuner
from keras_tuner.engine import hyperparameters as kt_hps
from keras_tuner.engine import trial as trial_module

from lqsearch.search import operators

__all__ = ["WarmStart", "checked_values"]

logger = logging.getLogger(__name__)

_STATUS = trial_module.TrialStatus


def checked_values(space, values):
    """The values as plain types, checked against the search space.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s (the oracle's space).
        values: mapping name -> value, every ACTIVE hyperparameter and no other.
    Raises:
        ValueError: naming the missing, unknown or invalid value.
    """
    if not space:
        raise ValueError("the oracle's search space is empty; declare it first (pass hyperparameters= to the "
                         "oracle, or create the tuner, which declares it), then add trials.")
    values = operators.plain_values(values)
    context = kt_hps.HyperParameters()
    for hp in space:
        if not context.is_active(hp):
            continue
        if hp.name not in values:
            raise ValueError(f"the values lack {hp.name!r}; give every active hyperparameter of the space.")
        if not operators.is_valid_value(hp, values[hp.name]):
            raise ValueError(f"{hp.name}={values[hp.name]!r} is not a value of {hp!r}.")
        context.values[hp.name] = values[hp.name]
    extra = sorted(set(values) - set(context.values))
    if extra:
        raise ValueError(f"the values name {extra}, which are not active hyperparameters of the space "
                         f"(active: {sorted(context.values)}); leave them out.")
    return values


class WarmStart:
    """`add_trial` for `EvolutionaryOracle` (a mixin: it uses the oracle's state and hooks)."""

    def add_trial(self, values, metrics):
        """Adds a trial run elsewhere, with its metrics, as a member of the population (origin "external").

        Arguments:
            values: the genome, a mapping of every active hyperparameter of the space to its value.
            metrics: metric name -> number, holding the oracle's objective and, with
                `selection="pareto"`, every objective (e.g. fitness, accuracy and flops).
        Returns:
            The new trial id. The trial is COMPLETED (FAILED, with the reason in its message, when
            the objective is missing or NaN), in the generation open now, and counts towards
            `max_trials`.
        Raises:
            ValueError: if the values are not a genome of the space, were already tried, or a
                metric is not a number.
        """
        values = checked_values(self.hyperparameters.space, values)
        for name, value in dict(metrics).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"metric {name!r} must be a number, got {value!r}.")
        trial_id, problem = self._add_trial_locked(values, {str(k): float(v) for k, v in metrics.items()})
        if problem:
            raise ValueError(f"EvolutionaryOracle.add_trial: {problem}")
        return trial_id

    @keras_tuner.synchronized
    def _add_trial_locked(self, values, metrics):
        """(trial id, None), or (None, why not); never raises (it holds the oracle lock)."""
        try:
            if operators.values_hash(values) in self._genome_hashes or self._duplicate(values):
                return None, f"the genome {values} was already tried in this project; each genome runs once."
            statuses = {t: trial.status for t, trial in self.trials.items()}
            trial_id = f"{len(self.trials):0{len(str(self.max_trials))}d}"
            hyperparameters = self.hyperparameters.copy()
            hyperparameters.values = values
            trial = trial_module.Trial(hyperparameters, trial_id, _STATUS.RUNNING)
            self._genome_hashes.add(operators.values_hash(values))
            self._lineage.record_external(trial_id, self._schedule.generation_now(statuses))
            self.save()  # the lineage reaches oracle.json before the trial file exists
            self._record_values(trial)
            self.trials[trial_id] = trial
            self.start_order.append(trial_id)
            self._save_trial(trial)
            self.update_trial(trial_id, metrics)
            trial.status = _STATUS.COMPLETED
            verbose, self._display.verbose = self._display.verbose, 0  # it never began on this display
            try:
                self.end_trial(trial)
            finally:
                self._display.verbose = verbose
            return trial_id, None
        except Exception as error:  # pylint: disable=broad-except
            logger.exception("EvolutionaryOracle: adding a trial failed")
            return None, f"adding the trial failed: {error!r}"
