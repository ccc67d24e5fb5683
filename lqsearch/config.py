"""`Config`: the frozen, strictly validated base of every lqsearch settings object, and its one-line errors.

Every settings class of the library (`TrainingConfig`, `EvaluationConfig`,
`EvolutionSettings`, `DataConfig`, ...) is a pydantic v2 model with
`extra="forbid"`, strict types (no `True` for an integer, no `"2"` for a
number), `allow_inf_nan=False` and its bounds declared once, on the field.
A recipe is composed of these same classes, so a setting is declared and
checked in exactly one place, whether it comes from Python or from YAML.

A refused value raises `ConfigError` (a `ValueError`) with one line: the key
(its dotted recipe path when it comes from a recipe), what is allowed, and a
fix, with "Did you mean ...?" for a misspelt key or choice.
"""
from __future__ import annotations

import math
import typing
from typing import Any, List, Optional, Tuple, Type

import annotated_types
import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic._internal._model_construction import ModelMetaclass  # the metaclass every model has

from lqsearch.checks import did_you_mean, example_value
from lqsearch.errors import ConfigError

__all__ = ["Config", "ConfigError", "explain"]


_TYPE_NAMES = {
    "int_type": "integer", "int_parsing": "integer", "int_from_float": "integer", "float_type": "number",
    "float_parsing": "number", "bool_type": "true/false", "bool_parsing": "true/false", "string_type": "string",
    "tuple_type": "a list", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping of settings",
    "model_attributes_type": "a mapping of settings",
}


class _ConfigMeta(ModelMetaclass):
    """Turns pydantic's errors of `SomeConfig(...)` into one `ConfigError` line. (Overriding `__init__`
    instead would make pydantic call it for nested configs too, losing the dotted key of the outer one.)"""

    def __call__(cls, *args: Any, **kwargs: Any):
        try:
            return super().__call__(*args, **kwargs)
        except pydantic.ValidationError as error:
            raise ConfigError(explain(error, cls, label=f"{cls.__name__} setting")) from None


class Config(BaseModel, metaclass=_ConfigMeta):
    """Base of lqsearch's settings: frozen, `extra="forbid"`, strict, no NaN or infinity.

    Construct with keyword arguments (`TrainingConfig(epochs=3)`); `replace(**changes)`
    returns a validated copy. Bad values raise `ConfigError` with one line.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
                              validate_by_name=True, validate_by_alias=True)

    @classmethod
    def parse(cls, data: Any, *, label: str, by_name: bool = True):
        """Validates a mapping (e.g. a recipe) into `cls`; errors name the dotted key after `label`.

        Arguments:
            data: the mapping.
            label: how keys are named in messages (e.g. "Recipe key").
            by_name: also accept field names where a key has an alias (`lam` for `lambda`).

        Raises:
            ConfigError: on any refused key or value.
        """
        if not by_name:
            _refuse_field_names(cls, data, label)
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as error:
            raise ConfigError(explain(error, cls, label=label)) from None

    def replace(self, **changes: Any):
        """A validated copy with `changes` applied (field names or aliases)."""
        return type(self)(**{**self.as_dict(), **changes})

    def as_dict(self) -> dict:
        """The settings as a plain mapping of field names (nested configs stay objects)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


def _refuse_field_names(model: Type[BaseModel], data: Any, label: str, prefix: str = "") -> None:
    """Refuses a field's Python name where it has another key (`lam` for `lambda`), as an unknown key."""
    if not isinstance(data, dict):
        return
    for name, info in model.model_fields.items():
        if info.alias and info.alias != name and name in data:
            valid = _valid_keys(model)
            raise ConfigError(f"Unknown {_noun(label)} {prefix + name!r}. Did you mean {prefix + info.alias!r}? "
                              f"Valid keys here: {', '.join(valid)}.")
        inner = _model_of(info.annotation)
        key = info.alias or name
        if inner is not None and key in data:
            _refuse_field_names(inner, data[key], label, f"{prefix}{key}.")


def _noun(label: str) -> str:
    return "recipe key" if label == "Recipe key" else label


# -- errors -----------------------------------------------------------------------------------------------------
def _key(loc: Tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (("." if key else "") + str(part))
    return key


def _model_of(annotation) -> Optional[Type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _walk(model: Type[BaseModel], loc: Tuple[Any, ...]):
    """(the model holding the last key of `loc`, that key's FieldInfo or None)."""
    field = None
    for index, part in enumerate(loc):
        if model is None or isinstance(part, int):
            return model, field
        field = _field(model, str(part))
        if index < len(loc) - 1:
            model = _model_of(field.annotation) if field is not None else None
    return model, field


def _field(model: Type[BaseModel], key: str):
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _valid_keys(model: Type[BaseModel]) -> List[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _bounds(field) -> Tuple[Any, Any, bool, bool]:
    low = high = None
    low_open = high_open = False
    for item in getattr(field, "metadata", ()):
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
    return low, high, low_open, high_open


def _allowed(low, high, low_open, high_open) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _example(field, low, high, low_open, high_open):
    default = getattr(field, "default", None)
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and math.isfinite(default) and (low is None or default > low or (default == low and not low_open)) \
            and (high is None or default < high or (default == high and not high_open)):
        return default
    return example_value(low, high, low_open, high_open)


def _choices(field) -> Tuple[Any, ...]:
    annotation = getattr(field, "annotation", None)
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is typing.Literal:
            return typing.get_args(candidate)
    return ()


def explain(error: pydantic.ValidationError, model: Type[BaseModel], *, label: str) -> str:
    """One line for the first error of `error`, raised while validating `model`.

    Arguments:
        error: pydantic's error.
        model: the model class that was validated (its fields give bounds, choices and defaults).
        label: how the key is introduced (e.g. "Recipe key", "TrainingConfig setting").

    Returns:
        What is wrong, what is allowed and a fix, naming the dotted key.
    """
    first = error.errors(include_url=False)[0]
    kind, loc, value = first["type"], tuple(first["loc"]), first.get("input")
    key = _key(loc)
    parent, field = _walk(model, loc)
    if kind == "extra_forbidden":
        prefix, name = (key.rsplit(".", 1)[0] + ".", loc[-1]) if len(loc) > 1 else ("", loc[-1])
        valid = _valid_keys(parent) if parent is not None else []
        hint = did_you_mean(name, valid).replace(" Did you mean '", f" Did you mean '{prefix}")
        return f"Unknown {_noun(label)} {key!r}.{hint} Valid keys here: {', '.join(valid)}."
    if kind == "missing":
        if label == "Recipe key":
            example = " (e.g. `space: vgg_small`)" if key == "space" else ""
            return f"The recipe has no {key!r}; add it{example}."
        return f"{label} {key!r} is missing; add it."
    low, high, low_open, high_open = _bounds(field)
    context = first.get("ctx") or {}
    if low is None and high is None:  # a bound raised by a validator (e.g. on one member of a union)
        low, low_open = (context["gt"], True) if "gt" in context else (context.get("ge"), False)
        high, high_open = (context["lt"], True) if "lt" in context else (context.get("le"), False)
    if kind == "finite_number":
        fix = f" Fix: e.g. {key}={_example(field, low, high, low_open, high_open):g}."
        return f"{label} {key!r} must be a finite number, got {value!r}; NaN and infinity are not numbers here.{fix}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        fix = f" Fix: e.g. {key}={_example(field, low, high, low_open, high_open):g}."
        return (f"{label} {key!r} is out of range: {value!r}; allowed values are "
                f"{_allowed(low, high, low_open, high_open)}.{fix}")
    if kind == "literal_error":
        choices = _choices(field)
        return (f"{label} {key!r} must be one of {', '.join(map(str, choices))}, got {value!r}."
                f"{did_you_mean(value, choices)}")
    if kind in _TYPE_NAMES:
        return f"{label} {key!r} must be {_TYPE_NAMES[kind]}, got {value!r}."
    message = str(context.get("error", first["msg"]))
    return f"{label} {key!r}: {message}" if key else message

