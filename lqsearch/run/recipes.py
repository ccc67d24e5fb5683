"""Recipes: YAML files validated into `Recipe`, composed of the library's own configs, with `key=value` overrides.

A recipe names everything one search needs: the space and its options, the
quantizer preset, the dataset and how it is split (`data`: a `DataConfig`), how
candidates are evaluated (`evaluation`: an `EvaluationConfig`), the search
(`search`: a `SearchSettings` plus the study's baselines), the final
retraining and what to publish. The sections are the very classes the library
takes, so a setting added to one of them is a recipe key at once, validated in
one place (`lqsearch.config`). Shipped recipes live in the top-level `recipes/`
folder (installed as the package data `lqsearch._recipes`). Overrides use
dotted keys (`search.population_size=8`) whose values are parsed as YAML
scalars (YAML 1.2 numbers: `2e6` is a number, see `lqsearch.run.yaml_text`).
Unknown keys, keys given twice, wrong types, NaN or infinity and out-of-range
values raise `RecipeError` naming the recipe key, the allowed values and a fix,
with "Did you mean ...?" for a misspelt key.
"""
from __future__ import annotations

from typing import Any, Dict, Literal, Mapping, Optional, Sequence, Tuple

import yaml
from pydantic import Field, field_validator, model_validator

from lqsearch import data, quantizers, spaces
from lqsearch.checks import check_finite
from lqsearch.config import Config, ConfigError
from lqsearch.data import DataConfig
from lqsearch.deploy.registry_files import check_identifier
from lqsearch.run import yaml_text
from lqsearch.run.recipe_text import (
    RecipeError,
    apply_overrides,
    list_recipes,
    parse_override,
    parse_overrides,
    read_recipe_text,
)
from lqsearch.search.evaluation import EvaluationConfig
from lqsearch.search.settings import SearchSettings
from lqsearch.training import PRESETS, STRATEGIES, TrainingConfig

__all__ = [
    "Recipe", "RecipeError", "list_recipes", "load_recipe", "read_recipe_text", "apply_overrides", "parse_override",
    "parse_overrides", "SMOKE_OVERRIDES", "to_yaml", "from_dict",
]

#: How recipe keys are named in messages.
LABEL = "Recipe key"


class SearchSection(SearchSettings):
    """A recipe's `search:` section: the `SearchSettings` the tuner takes, plus the study's baselines.

    Attributes:
        baselines: uniform values (e.g. 1, 2, 4) or genomes, final-trained in the study.
        evaluate_baselines: also score each baseline on search-val like a candidate.
    """

    baselines: Tuple[Any, ...] = Field((), strict=False)
    evaluate_baselines: bool = False

    @field_validator("baselines")
    @classmethod
    def _finite_baselines(cls, baselines):
        return tuple(check_finite("search.baselines", value) for value in baselines)

    def settings(self) -> SearchSettings:
        """The `SearchSettings` part (what `BinaryArchitectureSearch` takes)."""
        return SearchSettings(**{name: getattr(self, name) for name in SearchSettings.model_fields})


class FinalSettings(Config):
    """The study: searched genomes, baselines, a random search and the float twin, final-trained over seeds
    from scratch on the full train set (see `lqsearch.run.study`).

    Attributes:
        epochs: epochs of every final training (replaces `training.epochs`).
        top_n: how many of the search's best genomes are final-trained (`search.selection: fitness`).
        front_points: with `search.selection: pareto`, how many points of the final front are
            final-trained (K, default 3), spread evenly by cost rank along the front with both ends
            always in (`lqsearch.run.front`); each gets an iso-cost uniform row, and the verdict
            compares each with the uniform row at its cost. Ignored with `selection: fitness`.
        training: the schedule (a `TrainingConfig`, usually a paper preset).
        seeds: trainings per row, seeds `search.seed`, `search.seed + 1`, ...
        random_search: add the best of a random search with the same budget.
        float_twin: add the full-precision twin of the winner.
        band: rows whose FLOPs are within this relative band of the winner's count as equal cost
            (0.05: +-5%); the verdict's first sentence compares the winner with the best of them.
    """

    epochs: int = Field(2, ge=0)
    top_n: int = Field(1, ge=1)
    front_points: int = Field(3, ge=2, le=16)
    training: TrainingConfig = PRESETS["cpu"]
    seeds: int = Field(1, ge=1)
    random_search: bool = False
    float_twin: bool = False
    band: float = Field(0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _schedule_fits_epochs(self):
        try:
            self.config()
        except ConfigError as error:
            raise ValueError(f"training runs for epochs={self.epochs} here: {error}") from None
        return self

    def config(self) -> TrainingConfig:
        """The final trainings' `TrainingConfig` (`training` with `epochs`)."""
        return self.training.replace(epochs=self.epochs)


class PublishSettings(Config):
    """Where the final model is published (nothing when `name` is None)."""

    name: Optional[str] = None
    registry: Optional[str] = None
    version: Optional[str] = None

    @field_validator("name", "version", mode="before")
    @classmethod
    def _number_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value  # `publish.version=2`


class Recipe(Config):
    """One search, end to end (see the module docstring for its sections).

    Attributes:
        deterministic: the whole run gives the same numbers from the same seed (TensorFlow's op
            determinism: every op and every tf.data pipeline; `training.seed_everything`). None: on on the
            CPU, off on a GPU, where deterministic cuDNN algorithms are slower and some ops raise.
            (`data.deterministic` only orders the pipelines' elements, for a run that is not deterministic.)
    """

    name: str
    space: str
    description: str = ""
    space_options: Dict[str, Any] = {}
    quantizer: Optional[str] = None
    strategy: Literal[STRATEGIES] = "default"
    dataset: str = "embedded"
    data: DataConfig = DataConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    search: SearchSection = SearchSection()
    final: FinalSettings = FinalSettings()
    publish: PublishSettings = PublishSettings()
    deterministic: Optional[bool] = None

    @model_validator(mode="after")
    def _one_determinism(self):
        if self.deterministic and self.data.deterministic is False:
            raise ValueError("deterministic: true makes every pipeline deterministic, so data.deterministic: false "
                             "would be ignored. Fix: drop data.deterministic, or set deterministic: false.")
        return self

    @field_validator("space_options")
    @classmethod
    def _finite_options(cls, options):
        return check_finite("space_options", dict(options))


#: The smoke preset: any recipe shrunk to seconds on the embedded sample (and its
#: baselines cut to the first one).
SMOKE_OVERRIDES = {
    "dataset": "embedded", "data.train_limit": 300, "data.test_limit": 100, "data.batch_size": 50,
    "data.image_size": None, "data.search_val_per_class": None, "data.search_train_per_class": None,
    "data.search_fraction": 0.2,
    "space_options.width_multiplier": 0.125,
    "evaluation.epochs": 1, "evaluation.widest_epochs": 1, "evaluation.supernet_steps": 4,
    "evaluation.recalibration_batches": 1, "evaluation.training.steps_per_epoch": 2,
    "evaluation.training.batch_size": None, "evaluation.training.milestones": [], "evaluation.widest_training": None,
    "search.population_size": 2, "search.num_parents": 2, "search.num_crossovers": 1, "search.num_mutations": 1,
    "search.generations": 2, "search.max_trials": 3,
    "search.evaluate_baselines": False,
    "final.epochs": 1, "final.top_n": 1, "final.seeds": 1, "final.training.steps_per_epoch": 2,
    "final.training.batch_size": None, "final.training.milestones": [],
}


def from_dict(data: Mapping[str, Any]) -> Recipe:
    """Validates a recipe mapping into a `Recipe`, checking the space, quantizer and dataset names.

    Raises:
        RecipeError: on an unknown key, a wrong type, an out-of-range value or an unknown name.
    """
    if not isinstance(data, Mapping):
        raise RecipeError(f"A recipe is a YAML mapping of keys, got {type(data).__name__}.")
    try:
        recipe = Recipe.parse(dict(data), label=LABEL, by_name=False)
    except ConfigError as error:
        raise RecipeError(str(error)) from None
    _check_names(recipe)
    return recipe


def _check_names(recipe: Recipe) -> None:
    """Checks what the types and ranges cannot: names (space, options, quantizer, dataset), the
    baselines against the space, publish identifiers."""
    try:
        space = spaces.get(recipe.space, **recipe.space_options)
    except ValueError as error:
        where = "space_options" if recipe.space in spaces.list_spaces() else "space"
        raise RecipeError(f"Recipe key {where!r}: {error}") from None
    try:
        quantizers.get(recipe.quantizer or space.default_quantizer)
        data.parse_source(recipe.dataset)
    except ValueError as error:
        raise RecipeError(str(error)) from None
    search = recipe.search
    for baseline in search.baselines:
        try:
            if isinstance(baseline, (list, dict)):
                space.genome(baseline)
            elif isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not baseline > 0:
                raise ValueError(f"a uniform value must be a finite number > 0, got {baseline!r}")
        except ValueError as error:
            raise RecipeError(f"search.baselines: {baseline!r} does not fit space {recipe.space!r}: {error}") from None
    for key in ("name", "version"):
        value = getattr(recipe.publish, key)
        if value is not None:
            try:
                check_identifier(key, value)
            except ValueError as error:
                raise RecipeError(f"Recipe key 'publish.{key}': {error}") from None


def to_dict(recipe: Recipe) -> Dict[str, Any]:
    """The recipe as a plain mapping with YAML key names (`lambda`), lists for tuples."""
    return recipe.model_dump(mode="json", by_alias=True)


def to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every key, defaults included)."""
    return yaml.safe_dump(to_dict(recipe), sort_keys=False, default_flow_style=False)


def load_recipe(name_or_path: str, overrides: Sequence[str] = (), *, smoke: bool = False) -> Recipe:
    """Loads, overrides and validates a recipe.

    Arguments:
        name_or_path: a shipped recipe name (see `list_recipes()`) or a YAML path.
        overrides: `key=value` strings, dotted keys for nested settings.
        smoke: apply `SMOKE_OVERRIDES` first (seconds-long run on the embedded sample).

    Returns:
        The validated `Recipe`.

    Raises:
        RecipeError: on any invalid recipe, override, key or value.
    """
    name, text = read_recipe_text(name_or_path)
    parsed_overrides = parse_overrides(overrides)
    try:
        data = yaml_text.load(text, source=f"Recipe {name_or_path!r}")
    except yaml_text.YamlError as error:
        raise RecipeError(str(error)) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise RecipeError(f"Recipe {name_or_path!r} must be a YAML mapping of keys (`space: vgg_small`, ...), "
                          f"got a {type(data).__name__}.")
    data.setdefault("name", name)
    if smoke:
        data = apply_overrides(data, SMOKE_OVERRIDES)
        data["search"]["baselines"] = list(data["search"].get("baselines") or [])[:1]
    data = apply_overrides(data, parsed_overrides)
    return from_dict(data)
