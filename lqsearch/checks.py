"""Checks of user-given values, in one place.

Each check returns the value in its canonical Python type, or raises one
error (a `ValueError` by default, or the subclass the caller names) whose
message names the key, says what is allowed and shows a valid example.
NaN and infinity are never numbers here, and `True`/`False` are never
integers.
"""
from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Iterable, Optional, Type

__all__ = ["check_int", "check_number", "check_bool", "check_choice", "check_finite", "did_you_mean", "example_value"]


def did_you_mean(value: Any, choices: Iterable[Any]) -> str:
    """' Did you mean 'x'?' for the closest of `choices`, or ''."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _bounds_text(minimum, maximum, low_open: bool = False, high_open: bool = False) -> str:
    low = None if minimum is None else f"{'>' if low_open else '>='} {minimum:g}"
    high = None if maximum is None else f"{'<' if high_open else '<='} {maximum:g}"
    if low and high:
        return f"{low} and {high}"
    return low or high or ""


def check_int(
    name: str, value: Any, *, minimum: Optional[int] = None, maximum: Optional[int] = None,
    allow_none: bool = False, error: Type[ValueError] = ValueError,
) -> Optional[int]:
    """Returns `value` as an `int` if it is an integer within [minimum, maximum].

    Arguments:
        name: the key, for the message (e.g. "search.population_size").
        value: the value to check (numpy integers are accepted).
        minimum, maximum: inclusive bounds, or None.
        allow_none: accept None (returned as None).
        error: the exception class to raise.

    Raises:
        error: if `value` is not such an integer.
    """
    if value is None and allow_none:
        return None
    in_range = (
        isinstance(value, numbers.Integral) and not isinstance(value, bool)
        and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    )
    if not in_range:
        bounds = _bounds_text(minimum, maximum)
        example = minimum if minimum is not None else (maximum if maximum is not None else 1)
        raise error(
            f"{name} must be an integer{' ' + bounds if bounds else ''}{' or null' if allow_none else ''}, "
            f"got {value!r}. Fix: e.g. {name}={example}."
        )
    return int(value)


def example_value(minimum=None, maximum=None, low_open: bool = False, high_open: bool = False) -> float:
    """A valid value inside the bounds, for the "Fix: e.g." part of a message.

    Arguments:
        minimum, maximum: bounds, or None.
        low_open, high_open: whether the bound itself is excluded.

    Returns:
        A number within the bounds: the closed bound when there is one, else a value inside.
    """
    if minimum is not None and maximum is not None:
        if not low_open:
            return minimum
        inside = minimum + 1 < maximum or (minimum + 1 == maximum and not high_open)
        return minimum + 1 if inside else (minimum + maximum) / 2
    if minimum is not None:
        return minimum if not low_open else (minimum * 2 if minimum > 0 else minimum + 1)
    if maximum is not None:
        return maximum if not high_open else maximum - 1
    return 1


def check_number(
    name: str, value: Any, *, minimum: Optional[float] = None, maximum: Optional[float] = None,
    low_open: bool = False, high_open: bool = False, allow_none: bool = False,
    error: Type[ValueError] = ValueError, example: Optional[float] = None,
) -> Optional[float]:
    """Returns `value` as a `float` if it is a finite number within the bounds.

    Arguments:
        name: the key, for the message.
        value: the value to check (ints and numpy numbers are accepted; bools, NaN and infinity are not).
        minimum, maximum: bounds, or None.
        low_open, high_open: exclude the bound itself (e.g. a fraction strictly between 0 and 1).
        allow_none: accept None (returned as None).
        error: the exception class to raise.
        example: a valid value for the "Fix: e.g." part of the message (default: one inside the bounds).

    Raises:
        error: if `value` is not such a number.
    """
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        number = float(value)
        ok = (
            (minimum is None or number > minimum or (number == minimum and not low_open))
            and (maximum is None or number < maximum or (number == maximum and not high_open))
        )
    if not ok:
        bounds = _bounds_text(minimum, maximum, low_open, high_open)
        fix = example_value(minimum, maximum, low_open, high_open) if example is None else example
        raise error(
            f"{name} must be a finite number{' ' + bounds if bounds else ''}{' or null' if allow_none else ''}, "
            f"got {value!r}. Fix: e.g. {name}={fix:g}."
        )
    return number


def check_finite(name: str, value: Any, *, error: Type[ValueError] = ValueError) -> Any:
    """Returns `value` if no number inside it (nested lists, tuples and mappings included) is NaN or infinite.

    For values of free-form keys (space options, baselines) that the range checks do not see.

    Arguments:
        name: the key, for the message.
        value: any value.
        error: the exception class to raise.

    Raises:
        error: naming the key and the path of the first NaN or infinity.
    """
    pending, seen = [(name, value)], set()
    while pending:  # bounded: every container is visited once, even in a recursive YAML structure
        where, item = pending.pop()
        if isinstance(item, (dict, list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
        if isinstance(item, numbers.Real) and not isinstance(item, bool) and not math.isfinite(float(item)):
            raise error(f"{where} must be a finite number, got {item!r}; NaN and infinity are not numbers here. "
                        f"Fix: give a finite value for {where}.")
        if isinstance(item, dict):
            pending.extend((f"{where}.{key}", child) for key, child in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((f"{where}[{index}]", child) for index, child in enumerate(item))
    return value


def check_bool(name: str, value: Any, *, error: Type[ValueError] = ValueError) -> bool:
    """Returns `value` if it is `True` or `False`.

    Raises:
        error: for anything else (1, "yes", None, ...).
    """
    if not isinstance(value, bool):
        raise error(f"{name} must be true or false, got {value!r}.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], *, error: Type[ValueError] = ValueError) -> Any:
    """Returns `value` if it is one of `choices` (compared by type and value).

    Raises:
        error: naming the valid choices and the closest one.
    """
    choices = list(choices)
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        valid = ", ".join(str(c) for c in choices)
        raise error(f"{name} must be one of {valid}; got {value!r}.{did_you_mean(value, choices)}")
    return value
