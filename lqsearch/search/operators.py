"""Genetic operators on any Keras Tuner search space: sampling, crossover, mutation.

A genome is a Keras Tuner values dict: hyperparameter name -> plain Python
value (int, float, bool or str), holding the ACTIVE hyperparameters only.
The space is the ordered list of `keras_tuner` `HyperParameter` objects of an
oracle (`oracle.hyperparameters.space`). Keras Tuner registers a parent before
the hyperparameters of its conditional scopes, so walking the space in order
settles every parent before its children are tested for activity.

Mutation knows order. A gene picked for mutation is ordered when it is an
`Int`, a `Float`, or a `Choice` of numbers declared ordered (Keras Tuner's
default for numeric choices; lqsearch's genes are `hp.Choice(..., ordered=True)`).
An ordered gene moves locally with probability `LOCAL_MOVE_SHARE`: a Choice
to a neighbouring value, an Int or Float by a Gaussian step of
`STEP_FRACTION` of its range, taken in Keras Tuner's cumulative-probability
coordinates (`value_to_prob`/`prob_to_value`) so log sampling and steps are
respected; otherwise, and for categorical genes (strings, Boolean), the gene
is redrawn uniformly among its other values.

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
# Share of the mutations of an ordered gene that move locally (neighbour value
# or scaled step) instead of redrawing the gene uniformly.
LOCAL_MOVE_SHARE = 0.5
# Standard deviation of the Gaussian step of Int and Float genes, as a
# fraction of their range in cumulative-probability coordinates.
STEP_FRACTION = 0.1
# Largest cumulative probability handed to `prob_to_value`: an Int without a
# step maps 1.0 itself past `max_value`.
_BELOW_ONE = 1.0 - 1e-12
# Halvings of the probe used by `neighbour_value` on Int and Float genes.
_NEIGHBOUR_PROBES = 48


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


def is_ordered(hp):
    """Tells whether the values of a hyperparameter have a meaningful order.

    Arguments:
        hp: a Keras Tuner `HyperParameter`.

    Returns:
        `True` for `Int`, `Float`, and a `Choice` of numbers (not booleans)
        with `ordered=True`; `False` for strings, `Boolean` and `Fixed`.
    """
    if isinstance(hp, (kt_hps.Int, kt_hps.Float)):
        return True
    if isinstance(hp, kt_hps.Choice) and not isinstance(hp, kt_hps.Boolean):
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in hp.values)
        return bool(hp.ordered) and numeric
    return False


def _value_at(hp, prob):
    """The value of a numerical `hp` at cumulative probability `prob` (clipped to [0, 1])."""
    prob = min(max(prob, 0.0), 1.0)
    if prob >= 1.0 and isinstance(hp, kt_hps.Float) and hp.step is None:
        return float(hp.max_value)
    return to_plain(hp.prob_to_value(min(prob, _BELOW_ONE)))


def neighbour_value(hp, value, rng):
    """Moves an ordered gene one value up or down (the only way at an edge).

    Arguments:
        hp: an ordered Keras Tuner `HyperParameter` (see `is_ordered`).
        value: the current value.
        rng: a `random.Random` instance.

    Returns:
        For a `Choice`, the next smaller or larger of its values; for an `Int`
        or a stepped `Float`, the next value of its grid (log sampling
        respected); for a `Float` without step, the closest value Keras Tuner
        distinguishes. `value` itself if `hp` has a single value.
    """
    if isinstance(hp, kt_hps.Choice):
        ladder = sorted({to_plain(v) for v in hp.values})
        position = ladder.index(value) if value in ladder else min(
            range(len(ladder)), key=lambda i: abs(ladder[i] - value))
        candidates = [ladder[i] for i in (position - 1, position + 1) if 0 <= i < len(ladder)]
        candidates = [c for c in candidates if c != value] or [value]
        choice = rng.choice(candidates)
        return next(to_plain(v) for v in hp.values if v == choice)
    directions = [1.0, -1.0] if rng.random() < 0.5 else [-1.0, 1.0]
    base = hp.value_to_prob(value)
    for direction in directions:
        probe = 1e-9
        for _ in range(_NEIGHBOUR_PROBES):
            candidate = _value_at(hp, base + direction * probe)
            if candidate != value and is_valid_value(hp, candidate):
                return candidate
            if not 0.0 <= base + direction * probe <= 1.0:
                break
            probe *= 2.0
    return value


def scaled_step_value(hp, value, rng, fraction=None):
    """Moves an `Int` or `Float` gene by a Gaussian step scaled to its range.

    The step is drawn in Keras Tuner's cumulative-probability coordinates
    (`hp.value_to_prob`, `hp.prob_to_value`), so a log-sampled gene moves by
    a factor and a stepped one stays on its grid; it is clipped at the range.

    Arguments:
        hp: a Keras Tuner `Int` or `Float`.
        value: the current value.
        rng: a `random.Random` instance.
        fraction: the standard deviation of the step, as a fraction of the range;
            None for `STEP_FRACTION`.

    Returns:
        A valid value, different from `value` when `hp` has another value (a
        step too small to leave the value's bucket becomes a neighbour step).
    """
    fraction = STEP_FRACTION if fraction is None else fraction
    candidate = _value_at(hp, hp.value_to_prob(value) + rng.gauss(0.0, fraction))
    if candidate != value and is_valid_value(hp, candidate):
        return candidate
    return neighbour_value(hp, value, rng)


def local_move(hp, value, rng):
    """A small move of an ordered gene: a neighbour for a Choice, a scaled step otherwise.

    Arguments:
        hp: an ordered Keras Tuner `HyperParameter` (see `is_ordered`).
        value: the current value.
        rng: a `random.Random` instance.

    Returns:
        A valid value for `hp`.
    """
    if isinstance(hp, kt_hps.Choice):
        return neighbour_value(hp, value, rng)
    return scaled_step_value(hp, value, rng)


def mutate_value(hp, value, rng, local_share=None):
    """Mutates one gene: a local move for ordered genes (share `local_share`), else a redraw.

    Arguments:
        hp: a Keras Tuner `HyperParameter`.
        value: the current value.
        rng: a `random.Random` instance.
        local_share: probability (None: `LOCAL_MOVE_SHARE`), for an ordered gene, of a local move
            instead of a uniform redraw.

    Returns:
        A plain value different from `value`, or `value` if `hp` cannot change.
    """
    local_share = LOCAL_MOVE_SHARE if local_share is None else local_share
    if is_ordered(hp) and rng.random() < local_share:
        moved = local_move(hp, value, rng)
        if moved != value:
            return moved
    return sample_different_value(hp, value, rng)


def mutate(space, parent, rng, mutation_rate, local_share=None):
    """Mutates genes of a genome; at least one gene changes when possible.

    Each active, mutable gene mutates (`mutate_value`) with probability
    `mutation_rate`. If none was picked, one mutable gene is picked uniformly.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        parent: values dict of the parent.
        rng: a `random.Random` instance.
        mutation_rate: per-gene probability in [0, 1].
        local_share: see `mutate_value`.

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
        child[name] = mutate_value(active[name], parent[name], rng, local_share)
    return child


def crossover_child(space, parent_a, parent_b, rng):
    """A valid child genome: uniform crossover of two parents, then `assemble`.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        parent_a, parent_b: the parents' values dicts.
        rng: a `random.Random` instance.

    Returns:
        A valid values dict for `space`.
    """
    return assemble(space, uniform_crossover(parent_a, parent_b, rng), rng)


def mutant_child(space, parent, rng, mutation_rate, local_share=None):
    """A valid child genome: `mutate` one parent, then `assemble`.

    Arguments:
        space: ordered list of Keras Tuner `HyperParameter`s.
        parent: the parent's values dict.
        rng: a `random.Random` instance.
        mutation_rate: per-gene mutation probability.
        local_share: see `mutate_value`.

    Returns:
        A valid values dict for `space`.
    """
    return assemble(space, mutate(space, parent, rng, mutation_rate, local_share), rng)
