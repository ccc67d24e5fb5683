"""Helpers of `lqsearch.oracle` that hold no oracle state.

Mostly pure genetic operators on Keras Tuner search spaces, plus value
conversion, argument validation and two crash-safe JSON file helpers.

A genome is a Keras Tuner values dict: hyperparameter name -> plain Python
value (int, float, bool or str), holding the ACTIVE hyperparameters only.
The space is the ordered list of `keras_tuner` `HyperParameter` objects of an
oracle (`oracle.hyperparameters.space`). Keras Tuner registers a parent before
the hyperparameters of its conditional scopes, so walking the space in order
settles every parent before its children are tested for activity.

Every operator draws its randomness from the `random.Random` instance it is
given, so a seeded caller gets a reproducible stream. Nothing here touches an
oracle or global state; only the two file helpers at the end do I/O.
"""
import hashlib
import json
import logging
import math
import numbers
import os

import numpy as np
from keras_tuner.engine import hyperparameters as kt_hps

logger = logging.getLogger("lqsearch.oracle")

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


def jsonable(obj):
    """Returns a copy of `obj` made of plain JSON types (numpy converted).

    Arguments:
        obj: nested dicts, lists, tuples and sets of scalars.

    Returns:
        The same structure with dicts (str keys), lists and plain scalars.
    """
    if type(obj) in _PLAIN_TYPES:
        return obj
    if isinstance(obj, dict):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(value) for value in obj]
    return to_plain(obj)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(settings, name, minimum, allow_none=False):
    value = settings[name]
    if allow_none and value is None:
        return
    if not _is_int(value) or value < minimum:
        none_text = " or None" if allow_none else ""
        raise ValueError(
            f"EvolutionaryOracle: `{name}` must be an integer >= {minimum}"
            f"{none_text}, got {value!r}. Pass e.g. {name}={max(minimum, 1)}."
        )


def validate_settings(settings):
    """Checks the arguments of `EvolutionaryOracle`.

    Arguments:
        settings: dict of the constructor arguments by name.

    Raises:
        ValueError: naming the argument, the allowed values and a fix.
    """
    for name, minimum in [
        ("max_trials", 1), ("population_size", 1), ("num_parents", 1),
        ("num_crossovers", 0), ("num_mutations", 0),
        ("max_sampling_attempts", 1), ("max_retries_per_trial", 0),
    ]:
        _check_int(settings, name, minimum)
    _check_int(settings, "max_consecutive_failed_trials", 1, allow_none=True)
    _check_int(settings, "seed", -(2**63), allow_none=True)
    if settings["num_parents"] > settings["population_size"]:
        raise ValueError(
            f"EvolutionaryOracle: num_parents={settings['num_parents']} exceeds "
            f"population_size={settings['population_size']}; the parents are the "
            "top trials of a population. Lower num_parents or raise "
            "population_size."
        )
    if settings["num_crossovers"] + settings["num_mutations"] == 0:
        raise ValueError(
            "EvolutionaryOracle: num_crossovers and num_mutations are both 0, so "
            "no child can be bred. Set at least one of them > 0 (e.g. 5 and 5)."
        )
    if settings["num_crossovers"] > 0 and settings["num_parents"] < 2:
        raise ValueError(
            "EvolutionaryOracle: crossover needs two parents but num_parents=1. "
            "Set num_parents >= 2, or num_crossovers=0 for mutation only."
        )
    rate = settings["mutation_rate"]
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(
            f"EvolutionaryOracle: `mutation_rate` must be a number in [0, 1], got "
            f"{rate!r}. Pass e.g. mutation_rate=0.1 (10% of genes resampled)."
        )
    constraint = settings["constraint"]
    if constraint is not None and not callable(constraint):
        raise ValueError(
            f"EvolutionaryOracle: `constraint` must be None or a callable "
            f"(values dict) -> bool, got {constraint!r}. Pass e.g. "
            "constraint=lambda values: flops(values) <= budget."
        )


def repair_tuner_state_files(project_dir):
    """Resets unreadable `<tuner_id>.json` files of a local project to `{}`.

    Keras Tuner writes them non-atomically after every trial, so a kill can
    leave an empty file that makes every restart fail; `{}` is the state of
    every Keras Tuner `Tuner`. Remote (`scheme://`) projects are left alone.

    Arguments:
        project_dir: the Keras Tuner project directory.
    """
    if "://" in project_dir:
        return
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name)
        if not name.endswith(".json") or name.startswith(".") or name == "oracle.json":
            continue
        try:
            with open(path) as state_file:
                json.load(state_file)
        except ValueError:
            logger.warning(
                "EvolutionaryOracle: %s was cut short by an interrupted write; "
                "resetting it to {} so the search can resume.", path,
            )
            write_json_atomically(path, {})


def write_json_atomically(path, obj):
    """Writes `obj` as JSON so that a kill never leaves half a file.

    Local paths go through a temporary file and `os.replace`; remote paths
    (`scheme://`) use Keras Tuner's own writer.

    Arguments:
        path: the file to write.
        obj: JSON-able data (numpy scalars are converted).
    """
    if "://" in str(path):  # remote file systems: Keras Tuner's own writer
        from keras_tuner.src import utils as kt_utils  # pylint: disable=import-outside-toplevel

        kt_utils.save_json(path, jsonable(obj))
        return
    from lqsearch.artifact import atomic_write_text  # pylint: disable=import-outside-toplevel

    atomic_write_text(path, json.dumps(jsonable(obj)))
