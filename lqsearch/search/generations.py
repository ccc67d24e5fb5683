"""The two schedules of `EvolutionaryOracle`: what the next trial is, or why to wait.

A schedule looks at the trials (their statuses and `Lineage`) and returns a
`Plan`: the generation and operator slot of the next trial and its parent
pool, or the reason the worker must wait. It never touches a file or an
oracle; the oracle runs the plan (`operators`) and records the birth.

`generational` (Algorithm 1 of Phan et al.; Shen et al. run 50 generations
of 32):

- Generation 0 is `population_size` (P) random genomes.
- Generation g + 1 begins only when every trial of generation g has ended
  (completed or failed). Its parents are the top-K (`num_parents`) of ALL
  the trials completed so far, frozen when it begins, and it holds exactly
  C (`num_crossovers`) crossover and M (`num_mutations`) mutation children,
  P = C + M.
- A failed child is replaced, in the same generation and slot, so that a
  generation ends with P completed trials; after P failures in one
  generation no more replacements are made and the generation closes when
  its running trials end (`closed` says which way it ended).

Why the top-K of everything completed, not of generation g alone: a genome
is never evaluated twice, so a survivor cannot be carried into the next
generation by re-evaluating it as Algorithm 1's population does; selecting
among all completed trials keeps the survivors (elitism) without paying for
a second evaluation, so the best genome found is never lost from the
breeding pool, and a generation thinned by failures still has K parents.
Before generation g + 1 begins every earlier trial has ended, so "all
completed so far" is exactly generations 0..g.

`steady_state` (for asynchronous workers, which never wait): each new trial
breeds from the top-K completed so far; it is random until P trials have
completed; its operator is crossover with probability C / (C + M) (C and M
are relative weights) and mutation otherwise; its generation label is the
number of trials completed when it was created, divided by P, so failed
trials do not shift the labels.

"The top-K" is the ranking of `selection` ("fitness" or NSGA-II's "pareto"),
which the oracle passes in as `top_k`.

Warm starts: scored trials the oracle did not breed (origin "external": an
earlier search in the same project, or `EvolutionaryOracle.add_trial`) are
members of the generation that was open when they arrived and count towards
its P like any other, so with P or more of them generation 0 is complete at
once and the first generation is bred from their top-K; with
"steady_state" breeding starts once P trials are scored, whatever made them.
A project reloaded with another population size, parent count or selection
goes on from the trials it has: the open generation's parents are ranked
again (`set_state(..., rerank=True)`).

References:
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Algorithm 1).
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural
      Architectures. ICCV Workshops 2019, arXiv:1909.07378.
"""
import dataclasses
import math
from typing import Optional, Tuple

from keras_tuner.engine import trial as trial_module

from lqsearch.search import operators

__all__ = ["Plan", "GenerationalSchedule", "SteadyStateSchedule", "make_schedule", "top_k_ids", "breed"]

_STATUS = trial_module.TrialStatus
PENDING_STATUSES = (_STATUS.RUNNING, _STATUS.INVALID, _STATUS.IDLE)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the next trial is.

    Attributes:
        generation: the generation of the next trial (or the one being waited for).
        slot: "random", "crossover" or "mutation"; None when the worker must wait.
        parents: trial ids of the parent pool (the top-K), best first.
        wait: None, or why no trial can be made now (the worker should ask again later).
    """

    generation: int
    slot: Optional[str] = None
    parents: Tuple[str, ...] = ()
    wait: Optional[str] = None


def _pending(status):
    return status in PENDING_STATUSES


class GenerationalSchedule:
    """Algorithm 1: whole generations of exactly C crossover and M mutation children.

    Arguments:
        settings: the `EvolutionSettings` (P = C + M is checked there).
    """

    name = "generational"

    def __init__(self, settings):
        self.settings = settings
        self.current = 0
        self.records = {0: self._record((), 0)}

    @staticmethod
    def _record(parents, began_after_ended):
        return {"parents": list(parents), "began_after_ended": int(began_after_ended), "closed": None}

    def quotas(self, generation):
        """Slot name -> number of completed trials the generation needs."""
        if generation == 0 or not self.records[generation]["parents"]:
            return {"random": self.settings.population_size}
        return {"crossover": self.settings.num_crossovers, "mutation": self.settings.num_mutations}

    def plan(self, statuses, lineage, top_k, ended, rng):
        """Returns the `Plan` of the next trial; may close the current generation and begin the next.

        Arguments:
            statuses: trial id -> status, for every trial of the oracle.
            lineage: the oracle's `Lineage`.
            top_k: callable () -> ids of the top-K completed trials, best first.
            ended: how many trials have ended so far (`len(oracle.end_order)`).
            rng: a `random.Random` instance (picks among the open slots).
        """
        population = self.settings.population_size
        while True:
            generation = self.current
            members = [t for t in lineage.members(generation) if t in statuses]
            used, running, completed, failed = {}, [], 0, 0
            for trial_id in members:
                status = statuses[trial_id]
                if _pending(status):
                    running.append(trial_id)
                elif status == _STATUS.COMPLETED:
                    completed += 1
                else:
                    failed += 1
                    continue
                slot = lineage.slot(trial_id)
                used[slot] = used.get(slot, 0) + 1
            room = population - completed - len(running)
            open_slots = {slot: quota - used.get(slot, 0) for slot, quota in self.quotas(generation).items()}
            open_slots = {slot: count for slot, count in open_slots.items() if count > 0}
            if room > 0 and open_slots and failed < population:
                names = sorted(open_slots)
                slot = rng.choices(names, weights=[open_slots[n] for n in names])[0]
                return Plan(generation, slot, tuple(self.records[generation]["parents"]))
            if running:
                shown = ", ".join(sorted(running)[:5]) + (", ..." if len(running) > 5 else "")
                return Plan(generation, wait=(
                    f"waiting for generation {generation} to end before generation {generation + 1} is bred: "
                    f"{len(running)} trial(s) running ({shown})"
                ))
            if completed >= population:
                closed = f"complete: {completed} trials completed"
            else:
                closed = (f"closed short: {completed} of {population} trials completed after {failed} failures "
                          f"(at most {population} failed trials are replaced per generation)")
            self.records[generation]["closed"] = closed
            self.current = generation + 1
            self.records[self.current] = self._record(top_k(), ended)

    def generation_now(self, statuses):
        """The generation open now (where a trial added from outside goes)."""
        return self.current

    def summaries(self, lineage, trials):
        """One dict per generation: {"generation", "trials", "parents", "began_after_ended", "closed"}."""
        summaries = []
        for generation in sorted(set(lineage.generations()) | set(self.records)):
            record = self.records.get(generation, {"parents": None, "began_after_ended": None, "closed": None})
            summaries.append({
                "generation": generation,
                "trials": [t for t in lineage.members(generation) if t in trials],
                "parents": None if record["parents"] is None else list(record["parents"]),
                "began_after_ended": record["began_after_ended"],
                "closed": record["closed"],
            })
        return summaries

    def get_state(self):
        records = {str(g): dict(r, parents=list(r["parents"])) for g, r in self.records.items()}
        return {"current": self.current, "records": records}

    def set_state(self, state, lineage, top_k, ended, rerank=False):
        """Restores `get_state`; without one (older project) resumes at the last recorded generation.

        With `rerank` (the ranking or P changed since the state was saved), the open generation's
        parents are ranked again from the trials completed so far.
        """
        if state:
            self.current = int(state["current"])
            self.records = {int(g): dict(r, parents=list(r["parents"])) for g, r in state["records"].items()}
            if rerank and self.current > 0:
                self.records[self.current] = self._record(top_k(), ended)
            return
        generations = lineage.generations()
        self.current = generations[-1] if generations else 0
        parents = top_k() if self.current else ()
        self.records = {g: self._record(parents if g == self.current else (), 0) for g in range(self.current + 1)}


class SteadyStateSchedule:
    """Each new trial breeds at once from the top-K completed so far (never waits).

    Arguments:
        settings: the `EvolutionSettings`; C and M are relative weights.
    """

    name = "steady_state"

    def __init__(self, settings):
        self.settings = settings

    def plan(self, statuses, lineage, top_k, ended, rng):
        """Returns the `Plan` of the next trial (same arguments as `GenerationalSchedule.plan`)."""
        completed = sum(status == _STATUS.COMPLETED for status in statuses.values())
        generation = completed // self.settings.population_size
        parents = tuple(top_k()) if completed >= self.settings.population_size else ()
        if not parents:
            return Plan(generation, "random")
        weight = self.settings.num_crossovers / (self.settings.num_crossovers + self.settings.num_mutations)
        crossover = len(parents) >= 2 and rng.random() < weight
        return Plan(generation, "crossover" if crossover else "mutation", parents)

    def generation_now(self, statuses):
        """The generation label a trial created now gets (completed trials // P)."""
        return sum(status == _STATUS.COMPLETED for status in statuses.values()) // self.settings.population_size

    def summaries(self, lineage, trials):
        """One dict per generation label; no parents or barrier records in steady state."""
        return [
            {"generation": g, "trials": [t for t in lineage.members(g) if t in trials],
             "parents": None, "began_after_ended": None, "closed": None}
            for g in lineage.generations()
        ]

    def get_state(self):
        return {}

    def set_state(self, state, lineage, top_k, ended, rerank=False):
        """Nothing to restore: the plan depends on the trials only."""


def make_schedule(settings):
    """The schedule named by `settings.schedule`."""
    if settings.schedule == "generational":
        return GenerationalSchedule(settings)
    return SteadyStateSchedule(settings)


def top_k_ids(trials, direction, k, index_of):
    """Ids of the top-`k` COMPLETED trials with a finite score, best first (ties: older first).

    Arguments:
        trials: trial id -> Keras Tuner `Trial`.
        direction: "max" or "min", the objective's direction.
        k: how many to keep.
        index_of: trial id -> creation index.
    """
    sign = -1.0 if direction == "max" else 1.0
    scored = sorted(
        (sign * trial.score, index_of(trial_id), trial_id)
        for trial_id, trial in trials.items()
        if trial.status == _STATUS.COMPLETED and trial.score is not None and not math.isnan(trial.score)
    )
    return [trial_id for _, _, trial_id in scored[:k]]


def breed(plan, parent_values, space, rng, mutation_rate, bred=True):
    """Makes one candidate genome for `plan`.

    Arguments:
        plan: a `Plan` with a slot.
        parent_values: parent trial id -> values dict, for the plan's parents.
        space: ordered list of Keras Tuner `HyperParameter`s.
        rng: a `random.Random` instance.
        mutation_rate: per-gene mutation probability.
        bred: False to draw a random genome whatever the slot (the oracle's
            fallback when breeding keeps producing duplicates).

    Returns:
        `(origin, parent ids, values)`: a "crossover" of two parents (a
        "mutation" when the pool has one parent only), a "mutation" of one, or
        a "random" genome for a random slot, an empty pool or `bred=False`.
    """
    parents = [p for p in plan.parents if p in parent_values]
    if plan.slot == "random" or not parents or not bred:
        return "random", [], operators.random_genome(space, rng)
    if plan.slot == "crossover" and len(parents) >= 2:
        first, second = rng.sample(parents, 2)
        return "crossover", [first, second], operators.crossover_child(
            space, parent_values[first], parent_values[second], rng)
    parent = rng.choice(parents)
    return "mutation", [parent], operators.mutant_child(space, parent_values[parent], rng, mutation_rate)
