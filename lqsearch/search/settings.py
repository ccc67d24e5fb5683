"""`EvolutionSettings` and `SearchSettings`: the evolution's and the search's knobs, declared and checked once.

`EvolutionaryOracle` takes `EvolutionSettings` (or the same names as keyword
arguments), `BinaryArchitectureSearch` takes `SearchSettings` (the evolution
plus the trial budget, the seed and the fitness), and a recipe's `search:`
section is a `SearchSettings` too, so the three never disagree.
"""
from __future__ import annotations

from typing import Annotated, Any, Dict, Literal, Optional, Tuple

import keras_tuner
from keras_tuner.src.engine import objective as objective_module  # create_objective, MultiObjective
from pydantic import Field, PlainSerializer, PlainValidator, model_validator

from lqsearch.config import Config

__all__ = ["EvolutionSettings", "SearchSettings", "SCHEDULES", "SELECTIONS", "COST_METRICS", "OBJECTIVE_DIRECTIONS",
           "SEARCH_COSTS"]

# "generational": Algorithm 1 of Phan et al. (a barrier between generations);
# "steady_state": each new trial breeds from the completed trials at once.
SCHEDULES = ("generational", "steady_state")
#: What the fitness charges: analytic FLOPs, or the measured single-image LCE latency.
COST_METRICS = ("flops", "latency")
#: "fitness": parents are the top-K by the oracle's objective; "pareto": by NSGA-II's ranking over `objectives`.
SELECTIONS = ("fitness", "pareto")
#: Directions of the metrics a `BinaryArchitectureSearch` trial reports (a name alone means this direction).
OBJECTIVE_DIRECTIONS = {"accuracy": "max", "fitness": "max", "flops": "min", "binary_macs": "min",
                        "memory_bits": "min", "latency_s": "min"}
#: The costs a search's Pareto selection may weigh against accuracy (`SearchSettings.objectives`).
SEARCH_COSTS = ("flops", "memory_bits", "latency_s")


class SettingsObjective(keras_tuner.Objective):
    """A `keras_tuner.Objective` that hashes and prints by value (so frozen settings stay hashable)."""

    def __hash__(self):
        return hash((self.name, self.direction))

    def __repr__(self):
        return f"Objective({self.name!r}, {self.direction!r})"


def _objective(value: Any) -> keras_tuner.Objective:
    """A `keras_tuner.Objective` from one, a metric name, or a {"name", "direction"} mapping."""
    if isinstance(value, keras_tuner.Objective) and not isinstance(value, objective_module.MultiObjective):
        objective = value
    elif isinstance(value, str) and value in OBJECTIVE_DIRECTIONS:
        objective = keras_tuner.Objective(value, OBJECTIVE_DIRECTIONS[value])
    elif isinstance(value, str):
        try:
            objective = objective_module.create_objective(value)  # Keras Tuner infers e.g. "val_accuracy" (max)
        except ValueError:
            raise ValueError(f"the direction of metric {value!r} is unknown; pass "
                             f"keras_tuner.Objective({value!r}, 'max') or ({value!r}, 'min')") from None
    elif isinstance(value, dict) and set(value) == {"name", "direction"} and isinstance(value["name"], str):
        objective = keras_tuner.Objective(value["name"], value["direction"])
    else:
        raise ValueError(f"an objective is a keras_tuner.Objective, a metric name or a mapping {{name, direction}}, "
                         f"got {value!r}; e.g. keras_tuner.Objective('flops', 'min')")
    if objective.direction not in ("max", "min"):
        raise ValueError(f"the direction of objective {objective.name!r} must be 'max' or 'min', "
                         f"got {objective.direction!r}")
    return SettingsObjective(objective.name, objective.direction)


def _objective_json(objective: keras_tuner.Objective) -> Any:
    """A name when it has its usual direction (a recipe's spelling), else {"name", "direction"}."""
    if OBJECTIVE_DIRECTIONS.get(objective.name) == objective.direction:
        return objective.name
    return {"name": objective.name, "direction": objective.direction}


#: One objective of the Pareto selection: stored as a `keras_tuner.Objective`, written to JSON as its name.
ObjectiveField = Annotated[keras_tuner.Objective, PlainValidator(_objective),
                           PlainSerializer(_objective_json, when_used="json")]


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
        selection: how the top-K parents are ranked: "fitness" (by the oracle's objective) or "pareto"
            (NSGA-II: non-dominated sorting, then crowding distance, over `objectives`; see `selection`).
        objectives: with "pareto", the objectives read from each trial's metrics, at least two, e.g.
            `[Objective("accuracy", "max"), Objective("flops", "min")]` (a `keras_tuner.Objective`, a
            metric name such as "accuracy" or "flops", or {"name", "direction"}); unused by "fitness".

    Raises:
        ConfigError: on a value out of range; the message names the setting and the fix.

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Algorithm 1).
        - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural
          Architectures. ICCV Workshops 2019, arXiv:1909.07378 (50 generations of 32).
        - Deb, Pratap, Agarwal, Meyarivan. A fast and elitist multiobjective genetic algorithm:
          NSGA-II. IEEE TEC 2002 ("pareto" selection).
    """

    population_size: int = Field(20, ge=1)
    num_parents: int = Field(10, ge=1)
    num_crossovers: int = Field(10, ge=0)
    num_mutations: int = Field(10, ge=0)
    mutation_rate: float = Field(0.1, ge=0, le=1)
    max_sampling_attempts: int = Field(1000, ge=1)
    schedule: Literal[SCHEDULES] = "generational"
    selection: Literal[SELECTIONS] = "fitness"
    objectives: Tuple[ObjectiveField, ...] = Field((), strict=False)

    @model_validator(mode="after")
    def _consistent(self):
        names = [getattr(objective, "name", objective) for objective in self.objectives]  # names in SearchSettings
        if len(set(names)) != len(names):
            raise ValueError(f"objectives {names} name a metric twice; give each objective once.")
        if self.selection == "pareto" and len(names) < 2:
            raise ValueError(
                f"selection='pareto' ranks the trials on several objectives but objectives={names}; give at "
                "least two, e.g. objectives=[Objective('accuracy', 'max'), Objective('flops', 'min')], or use "
                "selection='fitness'."
            )
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
                "crossover needs two parents but num_parents=1. Set num_parents >= 2, "
                "or num_crossovers=0 for mutation only."
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
        objectives: metric names for `selection="pareto"`: `accuracy` and one cost, `flops`,
            `memory_bits` or `latency_s` (which needs `cost_metric="latency"`); default accuracy and flops.
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
    cost_metric: Literal[COST_METRICS] = "flops"
    max_flops: Optional[float] = Field(None, gt=0)
    objectives: Tuple[Literal["accuracy", "flops", "memory_bits", "latency_s"], ...] = Field(
        ("accuracy", "flops"), strict=False)
    keep_candidates: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _search_objectives(self):
        objectives = list(self.objectives)
        if len(objectives) != 2 or objectives[0] != "accuracy" or objectives[1] not in SEARCH_COSTS:
            raise ValueError(
                f"objectives={objectives}: a search weighs accuracy against one cost, so give "
                f"['accuracy', COST] with COST one of {', '.join(SEARCH_COSTS)} (e.g. ['accuracy', 'flops'])."
            )
        if objectives[1] == "latency_s" and self.cost_metric != "latency":
            raise ValueError("objectives ['accuracy', 'latency_s'] need the measured latency: set "
                             "cost_metric='latency', or use 'flops' or 'memory_bits' as the cost.")
        return self

    @property
    def trials(self) -> int:
        """The trial budget: `max_trials`, else `generations * population_size`."""
        return self.max_trials if self.max_trials is not None else self.generations * self.population_size
