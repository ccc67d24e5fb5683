"""How a trial of `EvolutionaryOracle` fails: always FAILED with an explicit reason in its message.

A mixin of the oracle: a NaN or missing objective, a trial the "pareto"
selection cannot rank (an objective not reported as a finite number), or an
error while ending a trial (which must not escape the oracle lock) each leave
the trial FAILED with a message saying why.
"""
import logging
import math

from keras_tuner.engine import trial as trial_module

__all__ = ["TrialFailures"]

logger = logging.getLogger(__name__)

_STATUS = trial_module.TrialStatus


class TrialFailures:
    """Failure reasons of `EvolutionaryOracle` (uses its trials, `_selection` and `_pending_messages`)."""

    def _fail_unranked(self, trial):
        """Scores NaN (so the trial fails) a trial that lacks an objective of the selection."""
        missing = self._selection.missing(trial)
        if missing:
            trial.score = math.nan
            self._pending_messages.setdefault(trial.trial_id, (
                f"EvolutionaryOracle: selection='pareto' ranks trials on {missing} too, which trial "
                f"{trial.trial_id} did not report as finite numbers, so it is FAILED."))

    def _explain_failure(self, trial_id):
        """Gives a failed trial that has no message an explicit reason."""
        pending_message = self._pending_messages.pop(trial_id, None)
        trial = self.trials[trial_id]
        if trial.status == _STATUS.FAILED and not trial.message:
            trial.message = pending_message or (
                f"EvolutionaryOracle: the objective {self.objective.name!r} was "
                f"NaN or missing (score={trial.score}), so the trial is {trial.status}."
            )
            self._save_trial(trial)

    def _fail_after_error(self, trial_id, error):
        """Marks a trial FAILED after an error inside `end_trial`."""
        message = f"EvolutionaryOracle: ending trial {trial_id} failed: {error!r}"
        logger.exception(message)
        trial = self.trials.get(trial_id)
        if trial is None:
            return
        trial.status, trial.message = _STATUS.FAILED, message
        if trial_id not in self.end_order:
            self.end_order.append(trial_id)
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial_id:
                self.ongoing_trials.pop(tuner_id)
        try:
            self._save_trial(trial)
        except Exception:  # pylint: disable=broad-except
            logger.exception("EvolutionaryOracle: could not save trial %s", trial_id)
