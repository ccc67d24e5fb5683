"""Lineage of the trials of an evolutionary search: generation, origin, parents.

Pure bookkeeping, no Keras Tuner and no file: `EvolutionaryOracle` records a
birth when it proposes a genome and keeps the records in its state
(`get_state`/`set_state`), so they survive a resume.

A birth holds:

- `generation`: the generation the trial belongs to (see `generations`);
- `origin`: how its genome was made, one of `ORIGINS`: "random", "crossover",
  "mutation", or "external" for a trial the oracle did not breed (an earlier
  search in the same project, a project written before lineage was recorded,
  or a trial added by the user), which still joins the population;
- `parents`: the trial ids its genome was bred from (none for a random one);
- `slot`: the operator slot of its generation that it fills. It equals
  `origin`, except when breeding found no new valid genome and the slot was
  filled by a random one (origin "random" in a "crossover" or "mutation"
  slot), so a generation still holds exactly C + M children.
"""
__all__ = ["Lineage", "ORIGINS", "EXTERNAL"]

EXTERNAL = "external"
ORIGINS = ("random", "crossover", "mutation", EXTERNAL)


class Lineage:
    """Birth records of the trials, by trial id."""

    def __init__(self):
        self._births = {}

    def __contains__(self, trial_id):
        return trial_id in self._births

    def record(self, trial_id, generation, origin, parents, slot=None):
        """Records (or replaces) the birth of a trial.

        Arguments:
            trial_id: the trial id.
            generation: an int >= 0.
            origin: one of `ORIGINS`.
            parents: iterable of parent trial ids.
            slot: the generation slot it fills; `origin` when None.
        """
        self._births[str(trial_id)] = {
            "generation": int(generation),
            "origin": str(origin),
            "parents": [str(parent) for parent in parents],
            "slot": str(slot or origin),
        }

    def record_external(self, trial_id, generation):
        """Records a trial the oracle did not breed (origin "external", no parents) in `generation`."""
        self.record(trial_id, generation, EXTERNAL, [])

    def of(self, trial_id):
        """Returns `{"generation": int, "origin": str, "parents": [str, ...]}` (a copy).

        Raises:
            KeyError: if the trial has no birth record.
        """
        birth = self._births[trial_id]
        return {"generation": birth["generation"], "origin": birth["origin"], "parents": list(birth["parents"])}

    def generation(self, trial_id):
        """The generation of a recorded trial (KeyError if unknown)."""
        return self._births[trial_id]["generation"]

    def slot(self, trial_id):
        """The slot of a recorded trial (KeyError if unknown)."""
        return self._births[trial_id]["slot"]

    def members(self, generation):
        """Trial ids recorded in `generation`, in recording order."""
        return [trial_id for trial_id, birth in self._births.items() if birth["generation"] == generation]

    def generations(self):
        """The sorted list of generations that have a recorded trial."""
        return sorted({birth["generation"] for birth in self._births.values()})

    def get_state(self):
        """All birth records as plain JSON types."""
        return {trial_id: dict(birth, parents=list(birth["parents"])) for trial_id, birth in self._births.items()}

    def set_state(self, state, trial_ids):
        """Restores records made by `get_state`, keeping only the ids in `trial_ids`.

        A record whose trial file was never written (a kill between the two
        writes) is dropped: its trial id is free again.
        """
        self._births = {}
        for trial_id, birth in (state or {}).items():
            if trial_id in trial_ids:
                self.record(trial_id, birth["generation"], birth["origin"], birth.get("parents", []), birth.get("slot"))
