"""`EvolutionaryOracle`: evolutionary search on any Keras Tuner search space.

The loop is Algorithm 1 of "Binarizing MobileNet via Evolution-based
Searching", run steady-state so that parallel workers never wait:

1. The first `population_size` trials are uniformly random genomes.
2. Each later trial is bred from the COMPLETED trials. The top `num_parents`
   by objective (direction respected) are the parents (fewer if fewer are
   completed; random sampling if none is). With probability
   `num_crossovers / (num_crossovers + num_mutations)` the child is a
   gene-wise uniform crossover of two parents, otherwise a mutant of one
   (each active gene resampled with probability `mutation_rate`, at least
   one gene changed).
3. The child's active hyperparameters are then derived again from its values
   (`HyperParameters.is_active`), so conditional scopes stay consistent:
   inactive genes are dropped, newly active ones get random values.
4. A genome is never proposed twice (hashes of every trial ever created,
   failed ones included); the optional `constraint(values) -> bool` is
   checked before a trial exists. After `max_sampling_attempts` draws (first
   half bred, second half random) without a new valid genome, the search
   stops and `stop_reason` says why.

Trial `i` belongs to generation `i // population_size` (`generation_of`);
"50 generations of 32" is `population_size=32, max_trials=1600`.
`max_trials` counts COMPLETED trials: failed ones (exception, NaN objective)
keep their reason in `trial.message` and do not use the budget, but the
search stops after `max_trials` failures or `max_consecutive_failed_trials`
in a row.

Resume: a run killed at any moment and restarted with `overwrite=False`
ends with exactly `max_trials` completed trials, none completed twice.
Trial files and `oracle.json` are written atomically; on reload the trial
files decide what is finished (a finished trial still listed as running is
not re-run; a created trial missing from `oracle.json` is re-queued), and an
empty `<tuner_id>.json` (Keras Tuner writes it non-atomically) is reset to
`{}`, the state of every Keras Tuner `Tuner`. Hooks that hold the oracle lock
never raise (that would leak the lock): errors become failed trials or a
STOPPED answer.
"""
import logging
import math
import os
import random
import traceback

import keras_tuner
from keras_tuner.engine import trial as trial_module

from lqsearch import io
from lqsearch.checks import check_int
from lqsearch.search import operators, project_files
from lqsearch.search.settings import EvolutionSettings

__all__ = ["EvolutionaryOracle"]

logger = logging.getLogger(__name__)

_STATUS = trial_module.TrialStatus
_PENDING_STATUSES = (_STATUS.RUNNING, _STATUS.INVALID, _STATUS.IDLE)


class EvolutionaryOracle(keras_tuner.Oracle):
    """Evolutionary search (top-K selection, crossover, mutation) for Keras Tuner.

    Arguments:
        objective: as for any Keras Tuner oracle: a metric name, a
            `keras_tuner.Objective`, or a list (Keras Tuner sums a list).
        max_trials: number of COMPLETED trials to reach, an int >= 1.
        population_size: size of the random first population and of one
            generation, an int >= 1.
        num_parents: K, how many of the best completed trials breed, an int
            in [1, population_size] (>= 2 when `num_crossovers > 0`).
        num_crossovers: C, relative weight of crossover children, int >= 0.
        num_mutations: M, relative weight of mutant children, int >= 0;
            C + M must be > 0.
        mutation_rate: per-gene mutation probability, a float in [0, 1].
        constraint: optional callable `values dict -> bool`; genomes for which
            it is false are never run (e.g. a FLOPs ceiling).
        max_sampling_attempts: draws allowed to find one new valid genome
            before the search stops, an int >= 1.
        hyperparameters, allow_new_entries, tune_new_entries,
        max_retries_per_trial, max_consecutive_failed_trials: as in
            `keras_tuner.Oracle`, except that consecutive failures stop the
            search cleanly (see `stop_reason`) instead of raising.
        seed: optional int; the same seed with one worker gives the same
            genomes. None draws one (kept in the state).

    Attributes:
        stop_reason: None, or why the last STOPPED answer was given (done,
            exhausted space, unsatisfiable constraint, failures).
    Raises:
        ValueError: if an argument is out of range; the message says which
            values are allowed and how to fix it.
    """

    def __init__(
        self, objective=None, max_trials=10, *,
        population_size=EvolutionSettings.population_size,
        num_parents=EvolutionSettings.num_parents,
        num_crossovers=EvolutionSettings.num_crossovers,
        num_mutations=EvolutionSettings.num_mutations,
        mutation_rate=EvolutionSettings.mutation_rate,
        max_sampling_attempts=EvolutionSettings.max_sampling_attempts,
        constraint=None, hyperparameters=None, allow_new_entries=True,
        tune_new_entries=True, seed=None, max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
    ):
        try:
            self.settings = EvolutionSettings(
                population_size=population_size, num_parents=num_parents, num_crossovers=num_crossovers,
                num_mutations=num_mutations, mutation_rate=mutation_rate, max_sampling_attempts=max_sampling_attempts,
            )
            check_int("max_trials", max_trials, minimum=1)
            check_int("max_retries_per_trial", max_retries_per_trial, minimum=0)
            check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, minimum=1, allow_none=True)
            check_int("seed", seed, allow_none=True)
        except ValueError as error:
            raise ValueError(f"EvolutionaryOracle: {error}") from None
        if constraint is not None and not callable(constraint):
            raise ValueError(
                f"EvolutionaryOracle: `constraint` must be None or a callable (values dict) -> bool, got "
                f"{constraint!r}. Pass e.g. constraint=lambda values: flops(values) <= budget."
            )
        super().__init__(
            objective=objective, max_trials=max_trials,
            hyperparameters=hyperparameters, allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries, seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if seed is not None:  # Keras Tuner replaces seed=0 by a random seed.
            self.seed = self._seed_state = seed
        self.constraint = constraint
        self.stop_reason = None
        self._rng = random.Random(self.seed)
        self._genome_hashes = set()
        self._generations = {}
        self._failure_stop_message = None
        self._pending_messages = {}

    def generation_of(self, trial_id):
        """Returns the generation of a trial: its index // population_size.

        Arguments:
            trial_id: a trial id of this oracle.
        Returns:
            An int >= 0; 0 is the random first population.
        Raises:
            ValueError: if the trial id is unknown.
        """
        if trial_id in self._generations:
            return self._generations[trial_id]
        if trial_id in self.trials:
            return self._trial_index(trial_id) // self.settings.population_size
        raise ValueError(
            f"EvolutionaryOracle.generation_of: unknown trial id {trial_id!r}. "
            "Pass one of the ids in `oracle.trials`."
        )

    def remaining_trials(self):
        """Returns how many more trials may still be created (>= 0)."""
        completed, pending, _ = self._count_trials()
        return max(0, self.max_trials - completed - pending)

    def populate_space(self, trial_id):
        """Proposes a new, never-tried genome that satisfies the constraint.

        Arguments:
            trial_id: id of the trial to be created.
        Returns:
            `{"status": RUNNING, "values": dict}`, or
            `{"status": STOPPED, "values": None}` when no new valid genome was
            found in `max_sampling_attempts` draws (`stop_reason` says why).
        Raises:
            ValueError: if the constraint raises (`create_trial` turns this
                into a STOPPED answer with the message).
        """
        index = self._trial_index(trial_id)
        parents = self._parent_genomes() if index >= self.settings.population_size else []
        space = self.hyperparameters.space
        crossover_probability = self.settings.num_crossovers / (self.settings.num_crossovers + self.settings.num_mutations)
        rejected = {"duplicate": 0, "constraint": 0}
        for attempt in range(self.settings.max_sampling_attempts):
            if parents and attempt < max(1, self.settings.max_sampling_attempts // 2):
                values = operators.breed(
                    space, parents, self._rng, crossover_probability, self.settings.mutation_rate
                )
            else:
                values = operators.random_genome(space, self._rng)
            reason = self._rejection_reason(values)
            if reason is None:
                self._genome_hashes.add(operators.values_hash(values))
                self._generations[trial_id] = index // self.settings.population_size
                return {"status": _STATUS.RUNNING, "values": values}
            rejected[reason] += 1
        self._set_stop_reason(self._exhaustion_message(rejected), logging.WARNING)
        return {"status": _STATUS.STOPPED, "values": None}

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        """Creates the next trial for `tuner_id` (see `keras_tuner.Oracle`).

        The budget counts completed trials; never raises.
        """
        try:
            return self._create_trial(tuner_id)
        except Exception as error:  # pylint: disable=broad-except
            message = f"EvolutionaryOracle: stopped, creating a trial failed: {error}"
            self._set_stop_reason(f"{message}\n{traceback.format_exc()}", logging.ERROR)
            self.tuner_ids.discard(tuner_id)
            return trial_module.Trial(self.get_space(), status=_STATUS.STOPPED)

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        """Records metrics (see `keras_tuner.Oracle`); never raises."""
        try:
            return super().update_trial(trial_id, metrics, step=step)
        except Exception as error:  # pylint: disable=broad-except
            message = f"EvolutionaryOracle: bad metrics for trial {trial_id}: {error}"
            logger.warning(message)
            self._pending_messages[trial_id] = message
            fallback = trial_module.Trial(self.get_space(), trial_id, _STATUS.FAILED, message)
            return self.trials.get(trial_id, fallback)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        """Ends a trial (see `keras_tuner.Oracle`); never raises.

        A failed trial keeps its reason in `trial.message` (a NaN or missing
        objective gets an explicit one). The state is saved again once the
        trial has left `ongoing_trials`, so `oracle.json` stops listing it.
        """
        try:
            super().end_trial(trial)
            self._explain_failure(trial.trial_id)
        except Exception as error:  # pylint: disable=broad-except
            self._fail_after_error(trial.trial_id, error)
        self._save_quietly()

    def score_trial(self, trial):
        """Scores a trial; a missing objective scores NaN, so the trial fails."""
        try:
            super().score_trial(trial)
        except (KeyError, ValueError):
            trial.score = None
        trial.score = math.nan if trial.score is None else float(trial.score)

    def _check_consecutive_failures(self):
        """Records a stop (Keras Tuner raises) after too many failures in a row.

        Only the latest streak counts, so a resumed search whose cause was
        fixed can go on.
        """
        limit = self.max_consecutive_failed_trials
        streak = 0
        for trial_id in reversed(self.end_order):
            if self.trials[trial_id].status != _STATUS.FAILED:
                break
            streak += 1
        if limit and streak >= limit:
            self._failure_stop_message = (
                f"EvolutionaryOracle: {streak} consecutive trials failed "
                f"(max_consecutive_failed_trials={limit}); stopping the search. "
                "Fix the error below or raise max_consecutive_failed_trials.\n"
                + (self.trials[self.end_order[-1]].message or "")
            )
            self._set_stop_reason(self._failure_stop_message, logging.ERROR)

    def get_state(self):
        """Returns the whole oracle state as plain JSON types."""
        state = super().get_state()
        state["evolution"] = {
            "rng_state": self._rng.getstate(),
            "genome_hashes": sorted(self._genome_hashes),
            "generations": dict(self._generations),
            "stop_reason": self.stop_reason,
        }
        return io.jsonable(state)

    def set_state(self, state):
        """Restores a state made by `get_state` (trials must be loaded first)."""
        super().set_state(state)
        evolution = state.get("evolution", {})
        if "rng_state" in evolution:
            version, internal, gauss_next = evolution["rng_state"]
            self._rng.setstate((version, tuple(internal), gauss_next))
        self._genome_hashes = set(evolution.get("genome_hashes", []))
        self._generations = {str(k): int(v) for k, v in evolution.get("generations", {}).items()}
        self.stop_reason = evolution.get("stop_reason")
        for trial_id, trial in self.trials.items():
            values = trial.hyperparameters.values
            self._genome_hashes.add(operators.values_hash(values))
            self._tried_so_far.add(self._compute_values_hash(values))
            self._generations.setdefault(
                trial_id, self._trial_index(trial_id) // self.settings.population_size
            )

    def reload(self):
        """Reloads the project, then repairs what a kill may have left behind."""
        super().reload()
        self._requeue_unfinished_trials()
        project_files.repair_tuner_state_files(str(self._project_dir))
        self._save_quietly()

    def save(self):
        """Writes `oracle.json` atomically (a kill never leaves half a file)."""
        io.write_json(self._get_oracle_fname(), self.get_state(), indent=None, allow_nan=True)

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        io.write_json(path, trial.get_state(), indent=None, allow_nan=True)

    def _create_trial(self, tuner_id):
        """Body of `create_trial`, as `keras_tuner.Oracle.create_trial`."""
        if tuner_id in self.ongoing_trials:
            return self.ongoing_trials[tuner_id]
        self.tuner_ids.add(tuner_id)
        if self._retry_queue and self._failure_stop_message is None:
            trial = self.trials[self._retry_queue.pop()]
            trial.status = _STATUS.RUNNING
            self.ongoing_trials[tuner_id] = trial
            self.save()
            self._display.on_trial_begin(trial)
            return trial
        trial_id = f"{len(self.trials):0{len(str(self.max_trials))}d}"
        stop_message = self._budget_stop_message()
        if stop_message is None:
            response = self.populate_space(trial_id)
        else:
            self._set_stop_reason(stop_message, logging.INFO)
            response = {"status": _STATUS.STOPPED, "values": None}
        hyperparameters = self.hyperparameters.copy()
        hyperparameters.values = response.get("values") or {}
        trial = trial_module.Trial(hyperparameters, trial_id, response["status"])
        if trial.status == _STATUS.RUNNING:
            self._record_values(trial)
            self.ongoing_trials[tuner_id] = trial
            self.trials[trial_id] = trial
            self.start_order.append(trial_id)
            self._save_trial(trial)
            self.save()
            self._display.on_trial_begin(trial)
        else:
            self.tuner_ids.discard(tuner_id)
        return trial

    def _count_trials(self):
        """Returns the (completed, pending, failed) trial counts."""
        statuses = [trial.status for trial in self.trials.values()]
        completed = statuses.count(_STATUS.COMPLETED)
        pending = sum(statuses.count(status) for status in _PENDING_STATUSES)
        return completed, pending, len(statuses) - completed - pending

    def _budget_stop_message(self):
        """Returns why no new trial may start, or None if one may."""
        if self._failure_stop_message is not None:
            return self._failure_stop_message
        completed, pending, failed = self._count_trials()
        budget = f"max_trials={self.max_trials}"
        if completed >= self.max_trials:
            return f"EvolutionaryOracle: done, {completed} trials completed ({budget})."
        if completed + pending >= self.max_trials:
            return (
                f"EvolutionaryOracle: {completed} trials completed and {pending} "
                f"running fill {budget}; no new trial is needed."
            )
        if failed >= self.max_trials:
            return (
                f"EvolutionaryOracle: {failed} trials failed, as many as {budget}; "
                "stopping. Read `trial.message` of the failed trials for the cause."
            )
        return None

    def _parent_genomes(self):
        """Values of the top-`num_parents` completed trials, best first."""
        sign = -1.0 if self.objective.direction == "max" else 1.0
        scored = sorted(
            (
                (sign * trial.score, self._trial_index(trial.trial_id), trial)
                for trial in self.trials.values()
                if trial.status == _STATUS.COMPLETED
                and trial.score is not None and not math.isnan(trial.score)
            ),
            key=lambda item: item[:2],
        )
        return [
            operators.plain_values(trial.hyperparameters.values)
            for _, _, trial in scored[: self.settings.num_parents]
        ]

    def _rejection_reason(self, values):
        """Returns "duplicate", "constraint" or None for an acceptable genome."""
        if operators.values_hash(values) in self._genome_hashes or self._duplicate(values):
            return "duplicate"
        if self.constraint is None:
            return None
        try:
            accepted = bool(self.constraint(dict(values)))
        except Exception as error:
            raise ValueError(
                f"The constraint {self.constraint!r} raised {error!r} for the "
                f"values {values}. It must return True or False for every "
                "values dict of the search space; fix the constraint."
            ) from error
        return None if accepted else "constraint"

    def _exhaustion_message(self, rejected):
        if not self.hyperparameters.space:
            return ("EvolutionaryOracle: the search space is empty. Declare "
                    "hyperparameters in the hypermodel or pass hyperparameters=...")
        attempts = (f"after {self.settings.max_sampling_attempts} attempts ({rejected['duplicate']}"
                    f" already tried, {rejected['constraint']} broke the constraint)")
        if self.constraint is None:
            return (f"EvolutionaryOracle: no new genome {attempts}; the search space "
                    "is exhausted. Enlarge the search space or lower max_trials.")
        return (f"EvolutionaryOracle: no new genome satisfying the constraint {attempts};"
                " the search space is exhausted or the constraint is unsatisfiable. "
                "Relax the constraint or raise max_sampling_attempts.")

    def _set_stop_reason(self, message, level):
        if message != self.stop_reason:
            logger.log(level, message)
        self.stop_reason = message

    def _trial_index(self, trial_id):
        try:
            return int(trial_id)
        except (TypeError, ValueError):
            order = self.start_order
            return order.index(trial_id) if trial_id in order else len(order)

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

    def _save_quietly(self):
        try:
            self.save()
        except Exception:  # pylint: disable=broad-except
            logger.exception("EvolutionaryOracle: could not save oracle.json")

    def _requeue_unfinished_trials(self):
        """Makes the trial files, not `oracle.json`, decide what is finished.

        A finished trial still listed as running leaves the retry queue (no
        second evaluation); an unfinished trial missing from the queue (killed
        between writing it and `oracle.json`) joins it (not lost).
        """
        ordered = sorted(self.trials, key=self._trial_index)
        queue = []
        for trial_id in self._retry_queue + ordered[::-1]:
            trial = self.trials.get(trial_id)
            if trial is not None and trial_id not in queue:
                if trial.status in _PENDING_STATUSES:
                    queue.append(trial_id)
        self._retry_queue = queue
        for trial_id in ordered:
            if trial_id not in self.start_order:
                self.start_order.append(trial_id)
            finished = self.trials[trial_id].status not in _PENDING_STATUSES
            if finished and trial_id not in self.end_order:
                self.end_order.append(trial_id)
