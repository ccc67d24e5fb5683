"""`EvolutionSettings`: the evolution's knobs and their defaults, in one place.

`EvolutionaryOracle`, `BinaryArchitectureSearch` and the recipes all take
their defaults from this class, so the three never disagree.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping

from lqsearch.checks import check_int, check_number, did_you_mean

__all__ = ["EvolutionSettings"]


@dataclasses.dataclass(frozen=True)
class EvolutionSettings:
    """The settings of Algorithm 1 of Phan et al. (top-K, C crossovers, M mutations).

    Attributes:
        population_size: P, the size of the random first population and of one generation.
        num_parents: K, how many of the best completed trials breed (at most P; at least 2 with crossovers).
        num_crossovers: C, crossover children per generation.
        num_mutations: M, mutant children per generation; C + M > 0.
        mutation_rate: per-gene mutation probability, in [0, 1].
        max_sampling_attempts: draws allowed to find one new valid genome before the search stops.

    Raises:
        ValueError: on a value out of range; the message names the setting and the fix.

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Algorithm 1).
    """

    population_size: int = 20
    num_parents: int = 10
    num_crossovers: int = 10
    num_mutations: int = 10
    mutation_rate: float = 0.1
    max_sampling_attempts: int = 1000

    def __post_init__(self):
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
