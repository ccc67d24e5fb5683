"""Genetic operators on any Keras Tuner search space: sampling, crossover, mutation.

A genome is a Keras Tuner values dict: hyperparameter name -> plain Python
value (int, float, bool or str), holding the ACTIVE hyperparameters only.
The space is the ordered list of `keras_tuner` `HyperParameter` objects of an
oracle (`oracle.hyperparameters.space`). Keras Tuner registers a parent before
the hyperparameters of its conditional scopes, so walking the space in order
settles every parent before its children are tested for activity.

Every operator draws its randomness from the `random.Random` instance it is
given, so a seeded caller gets a reproducible stream. Nothing here touches an
oracle, a file or global state.
"""
import hashlib
import json
import math
import numbers

import numpy as np
from keras_tuner.engine import hyperparameters as kt_hps

# How many draws `sample_different_value` makes before giving up on a
# numerical hyperparameter with very few distinct values.
_MAX_REDRAWS = 32
_PLAIN_TYPES = frozenset([bool, int, float, str, type(None)])


def to_plain(value):
    """Converts a hyperparameter value to a plain Python scalar.

    Arguments:
        value: an int, float, bool or str, possibly a numpy scalar.

    Returns:
        The same value as a Python `bool`, `int`, `float` or `str`; anything
        else is returned unchanged.
    """
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def plain_values(values):
    """Returns a copy of a values dict with plain Python keys and values.

    Arguments:
        values: mapping of hyperparameter names to values.

    Returns:
        A new `dict` of `str` -> plain scalar.
    """
    return {str(name): to_plain(value) for name, value in values.items()}


def values_hash(values):
    """Returns a stable hash of a values dict (order and numpy independent).

    Arguments:
        values: mapping of hyperparameter names to values.

    Returns:
        A 32-character hexadecimal string.
    """
    text = json.dumps(plain_values(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def is_mutable(hp):
    """Tells whether a hyperparameter can take more than one value.

    Arguments:
        hp: a Keras Tuner `HyperParameter`.

    Returns:
        `False` for `Fixed`, single-value `Choice` and empty ranges.
    """
    if isinstance(hp, kt_hps.Fixed):
        return False
    if isinstance(hp, kt_hps.Choice):
        return len(set(hp.values)) > 1
    if isinstance(hp, (kt_hps.Int, kt_hps.Float)):
        return hp.max_value > hp.min_value
    return True


def is_valid_value(hp, value):
    """Tells whether `value` is allowed by the hyperparameter `hp`.

    Arguments:
        hp: a Keras Tuner `HyperParameter`.
        value: a candidate value.

    Returns:
        `True` if Keras Tuner could have sampled `value` for `hp`.
    """
    if isinstance(hp, kt_hps.Fixed):
        return type(value) is type(hp.value) and value == hp.value
    if isinstance(hp, kt_hps.Boolean):
        return isinstance(value, bool)
    if isinstance(hp, kt_hps.Choice):
        return any(type(value) is type(v) and value == v for v in hp.values)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if isinstance(hp, kt_hps.Int):
        return _is_valid_int(hp, value)
    if isinstance(hp, kt_hps.Float):
        tolerance = 1e-9 * max(1.0, abs(hp.max_value), abs(hp.min_value))
        return (
            math.isfinite(value)
            and hp.min_value - tolerance <= value <= hp.max_value + tolerance
        )
    return True


def _is_valid_int(hp, value):
    """Range and step check for an `Int` hyperparameter value."""
    if not isinstance(value, numbers.Integral):
        return False
    if not hp.min_value <= value <= hp.max_value:
        return False
    if hp.step and hp.sampling == "linear":
        return (value - hp.min_value) % hp.step == 0
    return True


def sample_value(hp, rng):
    """Draws a random value for one hyperparameter.

    Arguments:
        hp: a Keras Tuner `HyperParameter`.
        rng: a `random.Random` instance.

    Returns:
        A plain Python value, drawn with Keras Tuner's own sampling rule
        (`hp.prob_to_value`), so log sampling and steps are respected.
    """
    return to_plain(hp.prob_to_value(rng.random()))


def sample_different_value(hp, value, rng):
    """Draws a value for `hp` that differs from `value` when possible.

    Arguments:
        hp: a Keras Tuner `HyperParameter`.
        value: the current value.
        rng: a `random.Random` instance.

    Returns:
        A plain value different from `value`, or `value` itself if `hp`
        cannot change.
    """
    if isinstance(hp, kt_hps.Boolean):
        return not value
    if isinstance(hp, kt_hps.Choice):
        others = [v for v in hp.values if v != value]
        return to_plain(rng.choice(others)) if others else value
    for _ in range(_MAX_REDRAWS):
        candidate = sample_value(hp, rng)
        if candidate != value:
            return candidate
    return value


def active_hyperparameters(space, values):
    """Finds the hyperparameters of `space` that are active under `values`.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        values: a values dict (missing or invalid entries are ignored).

    Returns:
        A dict name -> `HyperParameter`, in space order, of the active
        hyperparameters that have a valid value in `values`.
    """
    context = kt_hps.HyperParameters()
    active = {}
    for hp in space:
        if not context.is_active(hp):
            continue
        if hp.name in values and is_valid_value(hp, values[hp.name]):
            context.values[hp.name] = values[hp.name]
            active[hp.name] = hp
    return active


def assemble(space, proposal, rng):
    """Turns a proposal into a valid genome of `space`.

    The space is walked in order. An active hyperparameter keeps its value
    from `proposal` when that value is valid for it; otherwise (missing,
    invalid, or newly activated by a changed parent) it gets a random value.
    Entries of `proposal` that are inactive are dropped.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        proposal: a values dict, possibly incomplete or inconsistent.
        rng: a `random.Random` instance.

    Returns:
        A values dict with exactly the active hyperparameters, plain values.
    """
    context = kt_hps.HyperParameters()
    for hp in space:
        if not context.is_active(hp):
            continue
        value = to_plain(proposal[hp.name]) if hp.name in proposal else None
        if value is None or not is_valid_value(hp, value):
            value = sample_value(hp, rng)
        context.values[hp.name] = value
    return plain_values(context.values)


def random_genome(space, rng):
    """Draws a uniformly random genome of `space`.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        rng: a `random.Random` instance.

    Returns:
        A valid values dict.
    """
    return assemble(space, {}, rng)


def uniform_crossover(parent_a, parent_b, rng):
    """Mixes two genomes gene by gene, each gene from either parent at 50%.

    Arguments:
        parent_a: values dict of the first parent.
        parent_b: values dict of the second parent.
        rng: a `random.Random` instance.

    Returns:
        A proposal (pass it through `assemble`): genes present in both
        parents are drawn from one of them; genes present in one only are
        kept, `assemble` drops them if they are inactive in the child.
    """
    child = {}
    for name in sorted(set(parent_a) | set(parent_b)):
        if name in parent_a and name in parent_b:
            child[name] = parent_a[name] if rng.random() < 0.5 else parent_b[name]
        else:
            child[name] = parent_a[name] if name in parent_a else parent_b[name]
    return child


def mutate(space, parent, rng, mutation_rate):
    """Resamples genes of a genome; at least one gene changes when possible.

    Each active, mutable gene is resampled to a different value with
    probability `mutation_rate`. If none was picked, one mutable gene is
    picked uniformly.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        parent: values dict of the parent.
        rng: a `random.Random` instance.
        mutation_rate: per-gene probability in [0, 1].

    Returns:
        A proposal (pass it through `assemble`). It equals `parent` only if
        no active gene of `parent` can change.
    """
    active = active_hyperparameters(space, parent)
    mutable = [name for name, hp in active.items() if is_mutable(hp)]
    child = dict(parent)
    if not mutable:
        return child
    chosen = [name for name in mutable if rng.random() < mutation_rate]
    if not chosen:
        chosen = [rng.choice(mutable)]
    for name in chosen:
        child[name] = sample_different_value(active[name], parent[name], rng)
    return child


def breed(space, parents, rng, crossover_probability, mutation_rate):
    """Makes one child genome from a list of parent genomes.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        parents: non-empty list of parent values dicts (the top-K).
        rng: a `random.Random` instance.
        crossover_probability: probability of a crossover child (needs two
            parents); otherwise the child is a mutant of one parent.
        mutation_rate: per-gene mutation probability.

    Returns:
        A valid values dict for `space`.

    Raises:
        ValueError: if `parents` is empty.
    """
    if not parents:
        raise ValueError("breed() needs at least one parent genome; got none.")
    if len(parents) >= 2 and rng.random() < crossover_probability:
        parent_a, parent_b = rng.sample(parents, 2)
        proposal = uniform_crossover(parent_a, parent_b, rng)
    else:
        proposal = mutate(space, rng.choice(parents), rng, mutation_rate)
    return assemble(space, proposal, rng)
