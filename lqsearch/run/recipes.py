"""Recipes: YAML files validated into frozen dataclasses, with `key=value` overrides.

A recipe names everything one search needs: the space and its options, the
quantizer preset, the dataset and its splits, how candidates are evaluated,
the evolution settings, the final retraining and what to publish. Shipped
recipes live in the top-level `recipes/` folder (installed as the package data
`lqsearch._recipes`). Overrides use dotted keys (`search.population_size=8`)
whose values are parsed as YAML scalars (YAML 1.2 numbers: `2e6` is a
number, see `lqsearch.run.yaml_text`). Unknown keys, keys given twice, wrong
types, NaN or infinity and out-of-range values raise `RecipeError` with the
closest valid key, the allowed range and an example fix.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union, get_args, get_origin, get_type_hints

import yaml

from lqsearch import data, quantizers, spaces, training
from lqsearch.checks import check_finite, example_value
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
from lqsearch.search.settings import SCHEDULES, EvolutionSettings

__all__ = [
    "Recipe", "RecipeError", "list_recipes", "load_recipe", "read_recipe_text", "apply_overrides", "parse_override",
    "parse_overrides", "SMOKE_OVERRIDES", "to_yaml", "from_dict",
]


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """A schedule preset of `lqsearch.training` plus overrides (None keeps the preset's value)."""

    preset: str = "cpu"
    epochs: Optional[int] = None
    optimizer: Optional[str] = None
    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    steps_per_epoch: Optional[int] = None

    def config(self) -> training.TrainingConfig:
        changes = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "preset"}
        return training.preset(self.preset, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Dataset options (see `lqsearch.data.load_dataset`)."""

    data_dir: Optional[str] = None
    manual_dir: Optional[str] = None
    batch_size: int = 128
    image_size: Optional[int] = None
    search_fraction: Optional[float] = None
    search_val_per_class: Optional[int] = None
    search_train_per_class: Optional[int] = None
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """How candidates are scored (see `lqsearch.search.evaluation.EvaluationConfig`)."""

    mode: str = "scratch"
    epochs: int = 2
    training: TrainingSettings = TrainingSettings()
    widest_epochs: int = 4
    supernet_steps: int = 500
    recalibration_batches: int = 10
    sandwich: bool = False
    distill: bool = False


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """Evolution settings. `max_trials` defaults to `generations * population_size`."""

    schedule: str = EvolutionSettings.schedule
    population_size: int = EvolutionSettings.population_size
    num_parents: int = EvolutionSettings.num_parents
    num_crossovers: int = EvolutionSettings.num_crossovers
    num_mutations: int = EvolutionSettings.num_mutations
    mutation_rate: float = EvolutionSettings.mutation_rate
    generations: int = 2
    max_trials: Optional[int] = None
    lam: Optional[float] = 4.0
    cost_metric: str = "flops"
    max_flops: Optional[float] = None
    seed: int = 1
    baselines: Tuple[Any, ...] = ()
    evaluate_baselines: bool = False

    @property
    def trials(self) -> int:
        return self.max_trials if self.max_trials is not None else self.generations * self.population_size


@dataclasses.dataclass(frozen=True)
class FinalSettings:
    """The study: searched genomes, baselines, a random search and the float twin, final-trained over seeds
    from scratch on the full train set (see `lqsearch.run.study`)."""

    epochs: int = 2
    top_n: int = 1
    training: TrainingSettings = TrainingSettings()
    seeds: int = 1
    random_search: bool = False
    float_twin: bool = False


@dataclasses.dataclass(frozen=True)
class PublishSettings:
    """Where the final model is published (nothing when `name` is None)."""

    name: Optional[str] = None
    registry: Optional[str] = None
    version: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One search, end to end."""

    name: str
    space: str
    description: str = ""
    space_options: Dict[str, Any] = dataclasses.field(default_factory=dict)
    quantizer: Optional[str] = None
    strategy: str = "default"
    dataset: str = "embedded"
    data: DataSettings = DataSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    search: SearchSettings = SearchSettings()
    final: FinalSettings = FinalSettings()
    publish: PublishSettings = PublishSettings()


#: YAML key -> field name where they differ (`lambda` is a Python keyword).
_ALIASES = {"lambda": "lam"}
_RANGES = {
    "search.population_size": (1, None), "search.num_parents": (1, None), "search.num_crossovers": (0, None),
    "search.num_mutations": (0, None), "search.mutation_rate": (0, 1), "search.generations": (1, None),
    "search.max_trials": (1, None), "search.lambda": (0, None), "search.max_flops": (0, None), "search.seed": (0, None),
    "evaluation.epochs": (0, None), "evaluation.widest_epochs": (0, None), "evaluation.supernet_steps": (0, None),
    "evaluation.recalibration_batches": (0, None), "final.epochs": (0, None), "final.top_n": (1, None),
    "final.seeds": (1, None),
    "data.batch_size": (1, None), "data.search_fraction": (0, 1), "data.search_val_per_class": (1, None),
    "data.search_train_per_class": (1, None),
    "data.train_limit": (1, None), "data.test_limit": (1, None), "data.image_size": (1, None), "data.seed": (0, None),
    **{f"{group}.training.{key}": bounds for group in ("evaluation", "final") for key, bounds in (
        ("epochs", (0, None)), ("learning_rate", (0, None)), ("batch_size", (1, None)), ("steps_per_epoch", (1, None)))},
}
#: Range bounds that are excluded: a ceiling of 0 FLOPs, a held-out fraction of 0 or 1.
_OPEN_LOW = {"search.max_flops", "data.search_fraction", "evaluation.training.learning_rate", "final.training.learning_rate"}
_OPEN_HIGH = {"data.search_fraction"}
_CHOICES = {"strategy": ("default", "mirrored"), "evaluation.mode": ("scratch", "inherit", "oneshot"),
            "search.cost_metric": ("flops", "latency"), "search.schedule": SCHEDULES}

#: The smoke preset: any recipe shrunk to seconds on the embedded sample (and its
#: baselines cut to the first one).
SMOKE_OVERRIDES = {
    "dataset": "embedded", "data.train_limit": 300, "data.test_limit": 100, "data.batch_size": 50,
    "data.image_size": None, "data.search_val_per_class": None, "data.search_train_per_class": None,
    "data.search_fraction": 0.2,
    "space_options.width_multiplier": 0.125,
    "evaluation.epochs": 1, "evaluation.widest_epochs": 1, "evaluation.supernet_steps": 4,
    "evaluation.recalibration_batches": 1, "evaluation.training.steps_per_epoch": 2,
    "evaluation.training.batch_size": None,
    "search.population_size": 2, "search.num_parents": 2, "search.num_crossovers": 1, "search.num_mutations": 1,
    "search.generations": 2, "search.max_trials": 3,
    "search.evaluate_baselines": False,
    "final.epochs": 1, "final.top_n": 1, "final.seeds": 1, "final.training.steps_per_epoch": 2,
    "final.training.batch_size": None,
}


def _field_key(key: str) -> str:
    return _ALIASES.get(key, key)


def _yaml_key(name: str) -> str:
    return {v: k for k, v in _ALIASES.items()}.get(name, name)


def _valid_keys(cls) -> List[str]:
    return [_yaml_key(f.name) for f in dataclasses.fields(cls)]


def _unknown_key_error(path: str, key: str, cls) -> RecipeError:
    valid = _valid_keys(cls)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {path + close[0]!r}?" if close else ""
    return RecipeError(f"Unknown recipe key {path + key!r}.{hint} Valid keys here: {', '.join(valid)}.")


def _type_name(tp) -> str:
    if get_origin(tp) is Union:
        return " or ".join(_type_name(a) for a in get_args(tp))
    return {type(None): "null", float: "number", int: "integer", bool: "true/false", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp, key: str):
    origin = get_origin(tp)
    if origin is Union:
        if value is None and type(None) in get_args(tp):
            return None
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _coerce(value, inner, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise RecipeError(f"Recipe key {key!r} must be a mapping of settings, got {value!r}.")
        return _build(tp, value, key + ".")
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"Recipe key {key!r} must be a list, got {value!r}.")
        return tuple(_coerce(v, get_args(tp)[0], key) for v in value)
    if origin in (dict, Dict):
        if not isinstance(value, Mapping):
            raise RecipeError(f"Recipe key {key!r} must be a mapping, got {value!r}.")
        return check_finite(key, dict(value), error=RecipeError)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is str and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `publish.version=2`
    if tp is Any:
        return check_finite(key, value, error=RecipeError)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise RecipeError(f"Recipe key {key!r} must be {_type_name(tp)}, got {value!r}.")
    _check_range(key, value)
    return value


def _check_range(key: str, value) -> None:
    if key in _CHOICES and value not in _CHOICES[key]:
        raise RecipeError(f"Recipe key {key!r} must be one of {', '.join(_CHOICES[key])}, got {value!r}.")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high = _RANGES.get(key, (None, None))
    low_open, high_open = key in _OPEN_LOW, key in _OPEN_HIGH
    example = _default_of(key)
    if not isinstance(example, (int, float)) or isinstance(example, bool) or not (
            (low is None or example > low) and (high is None or example < high)):
        example = example_value(low, high, low_open, high_open)
    fix = f"Fix: e.g. {key}={example:g}."
    if not math.isfinite(value):
        raise RecipeError(f"Recipe key {key!r} must be a finite number, got {value!r}; NaN and infinity are not "
                          f"numbers here. {fix}")
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and (value > high or (high_open and value == high))
    if too_low or too_high:
        if high is None:
            allowed = f"{'>' if low_open else '>='} {low}"
        else:
            allowed = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise RecipeError(f"Recipe key {key!r} is out of range: {value!r}; allowed values are {allowed}. {fix}")


def _default_of(key: str) -> Any:
    """The default of a dotted recipe key (None when it has none), for example fixes in messages."""
    node: Any = Recipe
    for part in key.split("."):
        fields = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        field = fields.get(_field_key(part))
        if field is None or field.default is dataclasses.MISSING:
            return None
        node = field.default
    return node


def _build(cls, data: Mapping[str, Any], path: str = ""):
    hints = get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        name = _field_key(str(key))
        if name not in hints or _yaml_key(name) != str(key):  # `lam` is spelled `lambda` in recipes
            raise _unknown_key_error(path, str(key), cls)
        kwargs[name] = _coerce(value, hints[name], path + str(key))
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        example = " (e.g. `space: vgg_small`)" if "space" in missing and not path else ""
        raise RecipeError(f"The recipe has no {', '.join(repr(path + m) for m in missing)}; add it{example}.")
    return cls(**kwargs)


def from_dict(data: Mapping[str, Any]) -> Recipe:
    """Validates a recipe mapping into a `Recipe`, checking the space, quantizer and dataset names.

    Raises:
        RecipeError: on an unknown key, a wrong type, an out-of-range value or an unknown name.
    """
    if not isinstance(data, Mapping):
        raise RecipeError(f"A recipe is a YAML mapping of keys, got {type(data).__name__}.")
    recipe = _build(Recipe, data)
    _check_names(recipe)
    return recipe


def _check_names(recipe: Recipe) -> None:
    """Checks what the types and ranges cannot: names (space, options, quantizer, dataset, presets), the
    baselines against the space, the evolution settings together (`EvolutionSettings`), publish identifiers."""
    try:
        space = spaces.get(recipe.space, **recipe.space_options)
    except ValueError as error:
        where = "space_options" if recipe.space in spaces.list_spaces() else "space"
        raise RecipeError(f"Recipe key {where!r}: {error}") from None
    try:
        quantizers.get(recipe.quantizer or space.default_quantizer)
        data.parse_source(recipe.dataset)
        recipe.evaluation.training.config()
        recipe.final.training.config()
    except RecipeError:
        raise
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
    try:  # the evolution's own checks, in their one home
        EvolutionSettings(**{name: getattr(search, name) for name in EvolutionSettings.names() if hasattr(search, name)})
    except ValueError as error:
        raise RecipeError(f"Recipe keys 'search.*': {error}") from None
    for key in ("name", "version"):
        value = getattr(recipe.publish, key)
        if value is not None:
            try:
                check_identifier(key, value)
            except ValueError as error:
                raise RecipeError(f"Recipe key 'publish.{key}': {error}") from None


def to_dict(recipe: Recipe) -> Dict[str, Any]:
    """The recipe as a plain mapping with YAML key names."""

    def convert(value):
        if dataclasses.is_dataclass(value):
            return {_yaml_key(f.name): convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(recipe)


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
