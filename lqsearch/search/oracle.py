"""`EvolutionaryOracle`: evolutionary search on any Keras Tuner search space.

Algorithm 1 of Phan et al. on the schedule of `generations` ("generational":
whole generations of C crossover and M mutation children of the top-K, behind
a barrier where workers back off, see `barrier`; or "steady_state"), with the
genetic `operators`; parents are the top-K of a `selection` ("fitness", or
NSGA-II's "pareto" over several objectives); scored trials the oracle did not
breed join the population (`warm_start`, origin "external"); every trial
records its `lineage`. A genome is never
proposed twice; the optional `constraint(values) -> bool` is checked before a
trial exists; after `max_sampling_attempts` draws without a new valid genome
the search stops and `stop_reason` says why (`stops`). `max_trials` counts
COMPLETED trials ("50 generations of 32" is `population_size=32,
max_trials=1600`); the search also stops after `max_trials` failures or
`max_consecutive_failed_trials` in a row.

Resume: a run killed at any moment and restarted with `overwrite=False` ends
with exactly `max_trials` completed trials, none completed twice, lineage and
generation in progress kept. `oracle.json` (holding the new lineage) is
written before a new trial file and again after, both atomically; on reload
the trial files decide what is finished (`project_files`). Hooks that hold
the oracle lock never raise (that would leak the lock).

References:
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Algorithm 1).
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural
      Architectures. ICCV Workshops 2019, arXiv:1909.07378.
    - Deb, Pratap, Agarwal, Meyarivan. A fast and elitist multiobjective
      genetic algorithm: NSGA-II. IEEE TEC 2002 ("pareto" selection).
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
from lqsearch.search import generations, operators, project_files, stops
from lqsearch.search.barrier import WorkerBarrier
from lqsearch.search.failures import TrialFailures
from lqsearch.search.lineage import Lineage
from lqsearch.search.selection import make_selection
from lqsearch.search.settings import EvolutionSettings
from lqsearch.search.warm_start import WarmStart

__all__ = ["EvolutionaryOracle"]

logger = logging.getLogger(__name__)

_STATUS = trial_module.TrialStatus
_PENDING_STATUSES = generations.PENDING_STATUSES


class EvolutionaryOracle(WarmStart, TrialFailures, keras_tuner.Oracle):
    """Evolutionary search (top-K selection, crossover, mutation) for Keras Tuner.

    Arguments:
        objective: as for any Keras Tuner oracle: a metric name, a
            `keras_tuner.Objective`, or a list (Keras Tuner sums a list).
        max_trials: number of COMPLETED trials to reach, an int >= 1.
        population_size: P, the size of the random first population and of
            one generation, an int >= 1.
        num_parents: K, how many of the best completed trials breed, an int
            in [1, population_size] (>= 2 when `num_crossovers > 0`). With
            "generational", the top-K of ALL trials completed before the
            generation began (see `generations` for why).
        num_crossovers: C, crossover children per generation
            ("generational") or their relative weight ("steady_state").
        num_mutations: M, mutation children per generation or their
            relative weight; C + M > 0, and C + M = P for "generational".
        mutation_rate: per-gene mutation probability, a float in [0, 1].
        max_sampling_attempts: draws allowed to find one new valid genome
            before the search stops, an int >= 1.
        schedule: "generational" (Algorithm 1, whole generations behind a
            barrier) or "steady_state" (asynchronous, never waits).
        selection, objectives: "fitness" (parents by `objective`) or "pareto"
            (NSGA-II over `objectives`, e.g. [Objective("accuracy", "max"),
            Objective("flops", "min")], read from the trials' metrics; a
            trial lacking one fails); see `EvolutionSettings`.
        settings: an `EvolutionSettings` holding all of the above at once
            (a `SearchSettings` is one too); not together with them.
            Settings left out take `EvolutionSettings`' defaults.
        constraint: optional callable `values dict -> bool`; genomes for which
            it is false are never run (e.g. a FLOPs ceiling).
        hyperparameters, allow_new_entries, tune_new_entries,
        max_retries_per_trial, max_consecutive_failed_trials: as in
            `keras_tuner.Oracle`, except that consecutive failures stop the
            search cleanly (see `stop_reason`) instead of raising.
        seed: optional int; the same seed with one worker gives the same
            genomes. None draws one (kept in the state).

    Attributes:
        settings: the `EvolutionSettings`.
        stop_reason: None, or why the last STOPPED answer was given (done,
            exhausted space, unsatisfiable constraint, failures).
    Raises:
        ValueError: if an argument is out of range; the message says which
            values are allowed and how to fix it.
    """

    def __init__(
        self, objective=None, max_trials=10, *,
        population_size=None, num_parents=None, num_crossovers=None, num_mutations=None, mutation_rate=None,
        max_sampling_attempts=None, schedule=None, selection=None, objectives=None, settings=None,
        constraint=None, hyperparameters=None, allow_new_entries=True,
        tune_new_entries=True, seed=None, max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
    ):
        given = {name: value for name, value in (
            ("population_size", population_size), ("num_parents", num_parents), ("num_crossovers", num_crossovers),
            ("num_mutations", num_mutations), ("mutation_rate", mutation_rate),
            ("max_sampling_attempts", max_sampling_attempts), ("schedule", schedule), ("selection", selection),
            ("objectives", objectives)) if value is not None}
        try:
            self.settings = EvolutionSettings.resolve(settings, given)
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
        self._lineage = Lineage()
        self._schedule = generations.make_schedule(self.settings)
        self._selection = make_selection(self.settings, self.objective)
        self._failure_stop_message = None
        self._pending_messages = {}
        self._barrier = WorkerBarrier()
        self._defer_saves = False

    # -- lineage and progress ------------------------------------------------
    def lineage(self, trial_id):
        """Returns how a trial was made.

        Arguments:
            trial_id: a trial id of this oracle.
        Returns:
            `{"generation": int, "origin": str, "parents": [trial id, ...]}`;
            origin is "random", "crossover", "mutation" or "external" (a
            trial the oracle did not breed, see `add_trial`).
        Raises:
            ValueError: if the trial id is unknown.
        """
        return self._lineage.of(self._known(trial_id, "lineage"))

    def generation_of(self, trial_id):
        """Returns the generation of a trial (its lineage generation, an int >= 0; 0 is random).

        A replacement of a failed child keeps the generation of the child it
        replaces, so failed trials do not shift the labels.

        Raises:
            ValueError: if the trial id is unknown.
        """
        return self._lineage.generation(self._known(trial_id, "generation_of"))

    def generations(self):
        """Returns one summary per generation, oldest first.

        Returns:
            A list of dicts `{"generation", "trials", "parents",
            "began_after_ended", "closed"}`: the trial ids of the generation;
            for "generational", the top-K parent ids it was bred from, how
            many trials had ended (`len(end_order)`) when it began, and None
            while it is open or why it closed; these three are None for
            "steady_state".
        """
        return self._schedule.summaries(self._lineage, self.trials)

    def waiting_reason(self, tuner_id=None):
        """Returns why a worker waits at the generation barrier, or None.

        Arguments:
            tuner_id: the worker's tuner id; None for any waiting worker.
        Returns:
            A sentence such as "waiting for generation 3 to end before
            generation 4 is bred: 2 trial(s) running (31, 33)", or None.
        """
        return self._barrier.reason(tuner_id)

    def remaining_trials(self):
        """Returns how many more trials may still be created (>= 0)."""
        completed, pending, _ = self._count_trials()
        return max(0, self.max_trials - completed - pending)

    # -- Keras Tuner hooks ---------------------------------------------------
    def populate_space(self, trial_id):
        """Proposes a new, never-tried genome that satisfies the constraint.

        Arguments:
            trial_id: id of the trial to be created.
        Returns:
            `{"status": RUNNING, "values": dict}` (its lineage recorded);
            `{"status": IDLE, "values": None, "reason": str}` when the
            generation barrier holds; or `{"status": STOPPED, "values": None}`
            when no new valid genome was found in `max_sampling_attempts`
            draws (`stop_reason` says why).
        Raises:
            ValueError: if the constraint raises (`create_trial` turns this
                into a STOPPED answer with the message).
        """
        statuses = {t: trial.status for t, trial in self.trials.items()}
        plan = self._schedule.plan(statuses, self._lineage, self._top_k_ids, len(self.end_order), self._rng)
        if plan.wait:
            return {"status": _STATUS.IDLE, "values": None, "reason": plan.wait}
        rejected = {"duplicate": 0, "constraint": 0}
        parent_values = {p: operators.plain_values(self.trials[p].hyperparameters.values)
                         for p in plan.parents if p in self.trials}
        for attempt in range(self.settings.max_sampling_attempts):
            bred = attempt < max(1, self.settings.max_sampling_attempts // 2)
            origin, parents, values = generations.breed(plan, parent_values, self.hyperparameters.space,
                                                        self._rng, self.settings.mutation_rate, bred)
            reason = self._rejection_reason(values)
            if reason is None:
                self._genome_hashes.add(operators.values_hash(values))
                self._lineage.record(trial_id, plan.generation, origin, parents, plan.slot)
                return {"status": _STATUS.RUNNING, "values": values}
            rejected[reason] += 1
        message = stops.exhaustion_message(not self.hyperparameters.space, self.settings.max_sampling_attempts,
                                           rejected, self.constraint is not None)
        self._set_stop_reason(message, logging.WARNING)
        return {"status": _STATUS.STOPPED, "values": None}

    def create_trial(self, tuner_id):
        """Creates the next trial for `tuner_id` (see `keras_tuner.Oracle`); never raises.

        The budget counts completed trials. The decision is taken under the
        oracle lock (`_create_trial_locked`); an IDLE answer (the worker must
        wait for the generation barrier) then waits OUTSIDE the lock, with an
        exponential back-off (0.05 s doubling to 1 s, cut short when a trial
        ends), so Keras Tuner's search loop, which asks again at once, does
        not busy-poll and other workers can end their trials meanwhile.
        """
        trial = self._create_trial_locked(tuner_id)
        if trial.status == _STATUS.IDLE:
            self._barrier.back_off(tuner_id)
        return trial

    @keras_tuner.synchronized
    def _create_trial_locked(self, tuner_id):
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
        Workers waiting at the generation barrier are woken up.
        """
        self._defer_saves = True  # Keras Tuner saves before the trial leaves ongoing_trials; once is enough
        try:
            super().end_trial(trial)
            self._explain_failure(trial.trial_id)
        except Exception as error:  # pylint: disable=broad-except
            self._fail_after_error(trial.trial_id, error)
        self._defer_saves = False
        self._save_quietly()
        self._barrier.trial_ended()

    def score_trial(self, trial):
        """Scores a trial; a missing objective (any of `objectives` for "pareto") scores NaN: the trial fails."""
        try:
            super().score_trial(trial)
        except (KeyError, ValueError):
            trial.score = None
        trial.score = math.nan if trial.score is None else float(trial.score)
        self._fail_unranked(trial)

    def _check_consecutive_failures(self):
        """Records a stop (Keras Tuner raises) after too many failures in a row.

        Only the latest streak counts, so a resumed search whose cause was
        fixed can go on.
        """
        limit = self.max_consecutive_failed_trials
        statuses = [self.trials[trial_id].status for trial_id in self.end_order]
        streak = next((n for n, status in enumerate(reversed(statuses)) if status != _STATUS.FAILED), len(statuses))
        if limit and streak >= limit:
            self._failure_stop_message = stops.consecutive_failures_message(
                streak, limit, self.trials[self.end_order[-1]].message)
            self._set_stop_reason(self._failure_stop_message, logging.ERROR)

    # -- state ---------------------------------------------------------------
    def get_state(self):
        """Returns the whole oracle state as plain JSON types."""
        return io.jsonable(self._state())

    def _state(self):
        state = super().get_state()
        state["evolution"] = {
            "rng_state": self._rng.getstate(),
            "genome_hashes": sorted(self._genome_hashes),
            "schedule": self.settings.schedule,
            "ranking": self._ranking_key(),
            "lineage": self._lineage.get_state(),
            "generations": self._schedule.get_state(),
            "stop_reason": self.stop_reason,
        }
        return state

    def set_state(self, state):
        """Restores a state made by `get_state` (trials must be loaded first).

        Trials without a birth record (another oracle's, an older project's)
        are recorded as "external" members of the last generation (0 if none).
        """
        super().set_state(state)
        evolution = state.get("evolution", {})
        if "rng_state" in evolution:
            version, internal, gauss_next = evolution["rng_state"]
            self._rng.setstate((version, tuple(internal), gauss_next))
        self._genome_hashes = set(evolution.get("genome_hashes", []))
        self._lineage.set_state(evolution.get("lineage"), set(self.trials))
        self.stop_reason = evolution.get("stop_reason")
        last = max(self._lineage.generations(), default=0)
        for trial_id in sorted(self.trials, key=self._trial_index):
            values = self.trials[trial_id].hyperparameters.values
            self._genome_hashes.add(operators.values_hash(values))
            self._tried_so_far.add(self._compute_values_hash(values))
            if trial_id not in self._lineage:
                self._lineage.record_external(trial_id, last)
        same_schedule = evolution.get("schedule") == self.settings.schedule
        saved = evolution.get("generations") if same_schedule else None
        rerank = evolution.get("ranking", self._ranking_key()) != self._ranking_key()
        self._schedule.set_state(saved, self._lineage, self._top_k_ids, len(self.end_order), rerank)

    def reload(self):
        """Reloads the project, then repairs what a kill may have left behind."""
        super().reload()
        self._retry_queue, self.start_order, self.end_order = project_files.requeued_orders(
            self.trials, self._retry_queue, self.start_order, self.end_order, self._trial_index, _PENDING_STATUSES,
        )
        project_files.repair_tuner_state_files(str(self._project_dir))
        self._save_quietly()

    def save(self):
        """Writes `oracle.json` atomically (a kill never leaves half a file)."""
        if not self._defer_saves:
            io.write_json(self._get_oracle_fname(), self._state(), indent=None, allow_nan=True)  # made plain there

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        io.write_json(path, trial.get_state(), indent=None, allow_nan=True)

    # -- creating a trial ----------------------------------------------------
    def _create_trial(self, tuner_id):
        """Body of `create_trial`, as `keras_tuner.Oracle.create_trial`."""
        if tuner_id in self.ongoing_trials:
            return self._answer(tuner_id, self.ongoing_trials[tuner_id])
        self.tuner_ids.add(tuner_id)
        if self._retry_queue and self._failure_stop_message is None:
            trial = self.trials[self._retry_queue.pop()]
            trial.status = _STATUS.RUNNING
            self.ongoing_trials[tuner_id] = trial
            self.save()
            self._display.on_trial_begin(trial)
            return self._answer(tuner_id, trial)
        trial_id = f"{len(self.trials):0{len(str(self.max_trials))}d}"
        stop_message = self._budget_stop_message()
        if stop_message is None:
            response = self.populate_space(trial_id)
        else:
            self._set_stop_reason(stop_message, logging.INFO)
            response = {"status": _STATUS.STOPPED, "values": None}
        if response["status"] == _STATUS.IDLE:
            return self._answer(tuner_id, trial_module.Trial(self.get_space(), status=_STATUS.IDLE),
                                response.get("reason"))
        hyperparameters = self.hyperparameters.copy()
        hyperparameters.values = response.get("values") or {}
        trial = trial_module.Trial(hyperparameters, trial_id, response["status"])
        if trial.status == _STATUS.RUNNING:
            self.save()  # the lineage reaches oracle.json before the trial file exists
            self._record_values(trial)
            self.ongoing_trials[tuner_id] = trial
            self.trials[trial_id] = trial
            self.start_order.append(trial_id)
            self._save_trial(trial)
            self.save()
            self._display.on_trial_begin(trial)
        else:
            self.tuner_ids.discard(tuner_id)
        return self._answer(tuner_id, trial)

    def _answer(self, tuner_id, trial, reason=None):
        """Tells the barrier what `tuner_id` was answered, and returns `trial`."""
        self._barrier.answered(tuner_id, trial.status == _STATUS.IDLE, reason)
        return trial

    def _known(self, trial_id, method):
        if trial_id not in self._lineage or trial_id not in self.trials:
            raise ValueError(f"EvolutionaryOracle.{method}: unknown trial id {trial_id!r}. "
                             "Pass one of the ids in `oracle.trials`.")
        return trial_id

    def _top_k_ids(self):
        return self._selection.top_k(self.trials, self.settings.num_parents, self._trial_index)

    def _ranking_key(self):
        """What the parents depend on (selection, P, K): a reload with another one re-ranks them."""
        return f"{self._selection.key()};P={self.settings.population_size};K={self.settings.num_parents}"

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
        return stops.budget_stop_message(*self._count_trials(), self.max_trials)

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

    def _save_quietly(self):
        try:
            self.save()
        except Exception:  # pylint: disable=broad-except
            logger.exception("EvolutionaryOracle: could not save oracle.json")

