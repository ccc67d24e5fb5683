"""`EvolutionSettings`: the evolution's knobs and their defaults, in one place.

`EvolutionaryOracle`, `BinaryArchitectureSearch` and the recipes all take
their defaults from this class, so the three never disagree.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping

from lqsearch.checks import check_choice, check_int, check_number, did_you_mean

__all__ = ["EvolutionSettings", "SCHEDULES"]

# "generational": Algorithm 1 of Phan et al. (a barrier between generations);
# "steady_state": each new trial breeds from the completed trials at once.
SCHEDULES = ("generational", "steady_state")


@dataclasses.dataclass(frozen=True)
class EvolutionSettings:
    """The settings of Algorithm 1 of Phan et al. (top-K, C crossovers, M mutations).

    Attributes:
        population_size: P, the size of the random first population and of one generation.
        num_parents: K, how many of the best completed trials breed (at most P; at least 2 with crossovers).
        num_crossovers: C, crossover children per generation ("generational"), or the relative
            weight of crossover children ("steady_state").
        num_mutations: M, mutant children per generation, or their relative weight; C + M > 0, and
            C + M = P for "generational".
        mutation_rate: per-gene mutation probability, in [0, 1].
        max_sampling_attempts: draws allowed to find one new valid genome before the search stops.
        schedule: "generational" (Algorithm 1: generation g + 1 is bred only when every trial of
            generation g has ended) or "steady_state" (each new trial breeds from the trials completed
            so far, so asynchronous workers never wait).

    Raises:
        ValueError: on a value out of range; the message names the setting and the fix.

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Algorithm 1).
        - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural
          Architectures. ICCV Workshops 2019, arXiv:1909.07378 (50 generations of 32).
    """

    population_size: int = 20
    num_parents: int = 10
    num_crossovers: int = 10
    num_mutations: int = 10
    mutation_rate: float = 0.1
    max_sampling_attempts: int = 1000
    schedule: str = "generational"

    def __post_init__(self):
        check_choice("schedule", self.schedule, SCHEDULES)
        for name, minimum in (("population_size", 1), ("num_parents", 1), ("num_crossovers", 0),
                              ("num_mutations", 0), ("max_sampling_attempts", 1)):
            check_int(name, getattr(self, name), minimum=minimum)
        object.__setattr__(self, "mutation_rate", check_number("mutation_rate", self.mutation_rate, minimum=0, maximum=1))
        if self.num_parents > self.population_size:
            raise ValueError(
                f"num_parents={self.num_parents} exceeds population_size={self.population_size}; the parents are "
                "the top trials of a population. Lower num_parents or raise population_size."
            )
        if self.num_crossovers + self.num_mutations == 0:
            raise ValueError(
                "num_crossovers and num_mutations are both 0, so no child can be bred. "
                "Set at least one of them > 0 (e.g. 10 and 10)."
            )
        if self.num_crossovers > 0 and self.num_parents < 2:
            raise ValueError(
                "crossover needs two parents but num_parents=1. Set num_parents >= 2, or num_crossovers=0 for mutation only."
            )
        crossovers, mutations, population = self.num_crossovers, self.num_mutations, self.population_size
        if self.schedule == "generational" and crossovers + mutations != population:
            raise ValueError(
                f"schedule='generational' breeds each generation from exactly num_crossovers crossover and "
                f"num_mutations mutation children, so set num_crossovers + num_mutations = population_size "
                f"(now {crossovers} + {mutations} != {population}), e.g. num_crossovers={population // 2}, "
                f"num_mutations={population - population // 2}; or use schedule='steady_state', where they are "
                "relative weights."
            )

    @classmethod
    def names(cls) -> tuple:
        """The setting names."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, settings: Mapping[str, Any], *, owner: str) -> EvolutionSettings:
        """Builds the settings from keyword arguments, refusing unknown names.

        Arguments:
            settings: setting name -> value (missing ones keep their default).
            owner: who received them, for the message (e.g. "EvolutionaryOracle").

        Raises:
            ValueError: on an unknown name (with the closest valid one) or a bad value.
        """
        unknown = [name for name in settings if name not in cls.names()]
        if unknown:
            raise ValueError(
                f"{owner} got unknown argument(s) {unknown}.{did_you_mean(unknown[0], cls.names())} "
                f"Evolution settings are {', '.join(cls.names())}."
            )
        return cls(**settings)

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)
