"""`EvolutionSettings` and `SearchSettings`: the evolution's and the search's knobs, declared and checked once.

`EvolutionaryOracle` takes `EvolutionSettings` (or the same names as keyword
arguments), `BinaryArchitectureSearch` takes `SearchSettings` (the evolution
plus the trial budget, the seed and the fitness), and a recipe's `search:`
section is a `SearchSettings` too, so the three never disagree.
"""
from __future__ import annotations

from typing import Any, Dict, Literal, Optional

from pydantic import Field, model_validator

from lqsearch.config import Config

__all__ = ["EvolutionSettings", "SearchSettings", "SCHEDULES", "COST_METRICS"]

# "generational": Algorithm 1 of Phan et al. (a barrier between generations);
# "steady_state": each new trial breeds from the completed trials at once.
SCHEDULES = ("generational", "steady_state")
#: What the fitness charges: analytic FLOPs, or the measured single-image LCE latency.
COST_METRICS = ("flops", "latency")


class EvolutionSettings(Config):
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
        ConfigError: on a value out of range; the message names the setting and the fix.

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Algorithm 1).
        - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural
          Architectures. ICCV Workshops 2019, arXiv:1909.07378 (50 generations of 32).
    """

    population_size: int = Field(20, ge=1)
    num_parents: int = Field(10, ge=1)
    num_crossovers: int = Field(10, ge=0)
    num_mutations: int = Field(10, ge=0)
    mutation_rate: float = Field(0.1, ge=0, le=1)
    max_sampling_attempts: int = Field(1000, ge=1)
    schedule: Literal["generational", "steady_state"] = "generational"

    @model_validator(mode="after")
    def _consistent(self):
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
        return self

    @classmethod
    def names(cls) -> tuple:
        """The evolution setting names (those `EvolutionaryOracle` takes as keyword arguments)."""
        return tuple(EvolutionSettings.model_fields)

    @classmethod
    def resolve(cls, settings: Optional[EvolutionSettings], given: Dict[str, Any]) -> EvolutionSettings:
        """`settings` (its evolution part), or the keyword arguments `given` over the defaults; not both."""
        if settings is None:
            return EvolutionSettings(**given)
        if not isinstance(settings, EvolutionSettings):
            raise ValueError(f"settings must be an EvolutionSettings, got {type(settings).__name__}. "
                             "Pass settings=EvolutionSettings(population_size=..., ...) or the keyword arguments.")
        if given:
            raise ValueError(f"got settings= and the keyword arguments {sorted(given)}; give one or the other.")
        return settings.evolution()

    def evolution(self) -> EvolutionSettings:
        """Only the evolution's settings (for an `EvolutionaryOracle`)."""
        return EvolutionSettings(**{name: getattr(self, name) for name in EvolutionSettings.names()})


class SearchSettings(EvolutionSettings):
    """One search: the evolution, its trial budget and seed, and the fitness (a recipe's `search:` section).

    Attributes:
        generations: with `max_trials` unset, the search runs `generations * population_size` trials.
        max_trials: COMPLETED trials to reach (overrides `generations`).
        seed: the oracle's seed and the seed every candidate's own seed derives from.
        lam: lambda of Shen et al.'s fitness `max(Acc - lambda * cost / cost_1x, 0)` (YAML key `lambda`);
            None scores the accuracy alone (Phan et al.: FLOPs act only through `max_flops`).
        cost_metric: `flops` (analytic) or `latency` (measured LCE latency) in the fitness.
        max_flops: FLOPs ceiling; genomes above it are never trained (None: no ceiling).
        keep_candidates: keep the trained weights of the N best candidates by fitness (`scratch`, `inherit`),
            for `get_best_models`; the weights of a candidate that falls out of the top N are deleted as the
            search goes. 0 (default) keeps none: the study retrains its rows from scratch anyway, and at
            paper scale the weights of 1,600 candidates would fill a disk. One-shot candidates keep no
            weights (they are extracted from the supernet again).
        (and every `EvolutionSettings` field)
    """

    generations: int = Field(2, ge=1)
    max_trials: Optional[int] = Field(None, ge=1)
    seed: int = Field(1, ge=0)
    lam: Optional[float] = Field(4.0, ge=0, alias="lambda")
    cost_metric: Literal["flops", "latency"] = "flops"
    max_flops: Optional[float] = Field(None, gt=0)
    keep_candidates: int = Field(0, ge=0)

    @property
    def trials(self) -> int:
        """The trial budget: `max_trials`, else `generations * population_size`."""
        return self.max_trials if self.max_trials is not None else self.generations * self.population_size
