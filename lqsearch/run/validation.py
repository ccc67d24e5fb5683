"""Validate everything a run needs before anything is written: `validate(recipe, out_dir, load_data=...)`.

A run that would fail on bad input fails here, before the run directory, the
registry or any other file is created, so fixing the value and running the
same command again just works. Checked, in this order (cheapest first):

1. the run directory (`--out`): a folder that can be created or written,
   empty or holding a run of this same recipe;
2. publishing: the registry is a local folder that can be created or written,
   its `index.json` is well formed, and `publish.version` is not taken;
3. the data: the dataset loads, its labels and split sizes are valid, it has
   at least two classes, and its images are large enough for the space;
4. the search: the cheapest genome of the space fits under `search.max_flops`.

The recipe itself (keys, types, ranges, names, evolution settings, publish
identifiers) was already checked by `lqsearch.run.recipes.load_recipe`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any, Callable

from lqsearch import io, spaces
from lqsearch.cost import CostCache
from lqsearch.data import DataError
from lqsearch.deploy import registry
from lqsearch.errors import RunDirError
from lqsearch.run import recipes

__all__ = ["validate", "ValidatedRun", "RunDirError", "check_run_dir", "minimum_image_size", "RECIPE_FILE",
           "PUBLISHED_FILE"]

RECIPE_FILE = "recipe.yaml"
#: Written by the runner once the final model is published, so a resume does not publish it again.
PUBLISHED_FILE = "published.json"
#: The largest image side the minimum-size search tries (a bound on its loop).
MAX_IMAGE_SIDE = 4096


@dataclasses.dataclass(frozen=True)
class ValidatedRun:
    """A recipe checked against its run directory, registry and data; nothing was written.

    Attributes:
        recipe: the validated recipe.
        out_dir: the run directory (not created yet when `resuming` is False).
        resuming: True when `out_dir` holds an earlier run of the same recipe.
        space: the configured search space.
        quantizer: the quantizer preset name (the recipe's, or the space's default).
        dataset: the loaded `lqsearch.data.Dataset`.
        cheapest_flops: FLOPs of the space's cheapest genome on the dataset's images.
    """

    recipe: recipes.Recipe
    out_dir: Path
    resuming: bool
    space: Any
    quantizer: str
    dataset: Any
    cheapest_flops: float


def validate(recipe: recipes.Recipe, out_dir, *, load_data: Callable[[recipes.Recipe], Any]) -> ValidatedRun:
    """Checks everything `recipe` needs to run into `out_dir`; writes nothing.

    Arguments:
        recipe: a recipe from `lqsearch.run.recipes.load_recipe`.
        out_dir: the run directory.
        load_data: the runner's loader, recipe -> `lqsearch.data.Dataset`.

    Returns:
        A `ValidatedRun`, whose space and dataset the run then uses.

    Raises:
        RunDirError: the run directory is unusable (a file, read-only, another recipe's run, ...).
        lqsearch.deploy.registry_files.RegistryError: the registry cannot receive the publish.
        DataError: the dataset is missing, malformed, or does not fit the space.
        RecipeError: a setting no candidate can satisfy (e.g. `search.max_flops`).
    """
    out_dir = Path(out_dir)
    resuming = check_run_dir(recipe, out_dir)
    if recipe.publish.name and not (out_dir / PUBLISHED_FILE).exists():
        registry.check_publish_target(recipe.publish.name, version=recipe.publish.version,
                                      registry=recipe.publish.registry)
    space = spaces.get(recipe.space, **recipe.space_options)
    quantizer = recipe.quantizer or space.default_quantizer
    dataset = load_data(recipe)
    if dataset.num_classes < 2:
        raise DataError(f"dataset {recipe.dataset!r} has {dataset.num_classes} class; a classifier needs at least 2. "
                        "Fix: use labels of at least two classes.")
    cheapest = _cheapest_flops(recipe, space, quantizer, dataset)
    max_flops = recipe.search.max_flops
    if max_flops is not None and cheapest > max_flops:
        raise recipes.RecipeError(
            f"Recipe key 'search.max_flops' is {max_flops:.6g}, below the {cheapest:.6g} FLOPs of the cheapest genome "
            f"of {space.name} on {_shape_text(dataset.input_shape)} images; no candidate can satisfy it. Fix: e.g. "
            f"search.max_flops={math.ceil(cheapest)} or more, or search.max_flops=null for no ceiling.")
    return ValidatedRun(recipe=recipe, out_dir=out_dir, resuming=resuming, space=space, quantizer=quantizer,
                        dataset=dataset, cheapest_flops=cheapest)


def check_run_dir(recipe: recipes.Recipe, out_dir: Path) -> bool:
    """Checks that `out_dir` can hold a run of `recipe`; writes nothing.

    Returns:
        True when `out_dir` holds an earlier run of the same recipe (a resume).

    Raises:
        RunDirError: if `out_dir` is a file, lies under a file, cannot be created or written, holds another
            recipe's run, or is a non-empty folder that is not a run directory.
    """
    problem = io.folder_problem(out_dir)
    if problem:
        raise RunDirError(f"The run directory {out_dir} {problem}. Fix: pass --out a folder you can write "
                          "(new or empty, or an earlier run of this recipe to resume it).")
    recipe_path = out_dir / RECIPE_FILE
    try:
        if recipe_path.exists():
            existing = recipe_path.read_text(encoding="utf-8")
            if existing != recipes.to_yaml(recipe):
                raise RunDirError(
                    f"{out_dir} holds a run of a different recipe (its recipe.yaml differs); "
                    "use another --out directory, or delete that one to start over."
                )
            return True
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise RunDirError(f"{out_dir} is not empty and holds no recipe.yaml; use an empty or new --out directory.")
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"The run directory {out_dir} cannot be read ({getattr(error, 'strerror', None) or error}). "
                          "Fix: pass --out a folder you can read and write.") from None
    return False


def _shape_text(shape) -> str:
    return "x".join(str(v) for v in shape)


def _cheapest_flops(recipe: recipes.Recipe, space, quantizer: str, dataset) -> float:
    """FLOPs of the cheapest genome on the dataset's images; DataError when they are too small for the space."""
    cost_of = CostCache(space, input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer=quantizer)
    try:
        return cost_of(space.cheapest()).flops
    except ValueError as error:
        height, width, channels = dataset.input_shape
        if _builds(json.dumps(space.get_config(), sort_keys=True), max(height, width, *space.default_input_shape[:2]),
                   channels, quantizer):
            minimum = minimum_image_size(space, channels=channels, quantizer=quantizer)
            if min(height, width) < minimum:
                raise DataError(
                    f"dataset {recipe.dataset!r} has {height}x{width} images, too small for search space "
                    f"{space.name!r}: its pooling needs at least {minimum}x{minimum}. "
                    f"Fix: set data.image_size={minimum} "
                    "or more in the recipe (the images are resized), or use larger images.") from None
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise recipes.RecipeError(
            f"Search space {space.name!r} with space_options {recipe.space_options} does not build: {message}. "
            "Fix: change space_options (e.g. a larger width_multiplier).") from None


def minimum_image_size(space, *, channels: int, quantizer: str) -> int:
    """The smallest square image side on which the space's cheapest genome builds (found once, then cached).

    Arguments:
        space: a `SearchSpace`.
        channels: the image channels.
        quantizer: the quantizer preset name.

    Returns:
        The side in pixels (1 for a space that builds on any size).

    Raises:
        ValueError: if the space does not build even on `MAX_IMAGE_SIDE` pixels.
    """
    return _minimum_size(json.dumps(space.get_config(), sort_keys=True), channels, quantizer)


@functools.lru_cache(maxsize=64)
def _builds(config: str, side: int, channels: int, quantizer: str) -> bool:
    """Whether the cheapest genome of the space `config` (JSON) builds on side x side x channels images."""
    space = spaces.from_config(json.loads(config))
    try:
        space.build(space.cheapest(), input_shape=(side, side, channels), num_classes=2, quantizer=quantizer)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _minimum_size(config: str, channels: int, quantizer: str) -> int:
    high = max(spaces.from_config(json.loads(config)).default_input_shape[:2])
    while not _builds(config, high, channels, quantizer):  # bounded by MAX_IMAGE_SIDE
        if high >= MAX_IMAGE_SIDE:
            raise ValueError(f"Search space {json.loads(config)} does not build on {high}x{high} images.")
        high = min(2 * high, MAX_IMAGE_SIDE)
    low = 0  # invariant: `high` builds, `low` does not (0 stands for "no size")
    while high - low > 1:  # bisection: at most log2(MAX_IMAGE_SIDE) builds
        middle = (low + high) // 2
        low, high = (low, middle) if _builds(config, middle, channels, quantizer) else (middle, high)
    return high
