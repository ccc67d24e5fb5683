"""`Dataset`: the four batched pipelines of one dataset, and the loading options shared by every source."""
import dataclasses
import math

import numpy as np
import tensorflow as tf

from lqsearch.checks import check_bool, check_choice, check_int, check_number
from lqsearch.data.errors import DataError
from lqsearch.data.pipelines import FAMILIES

__all__ = ["Dataset", "Options", "make_options", "SPLITS", "DEFAULT_SEARCH_FRACTION", "DEFAULT_IMAGENET_PER_CLASS"]

SPLITS = ("train", "search_train", "search_val", "test")
DEFAULT_SEARCH_FRACTION = 0.1
DEFAULT_IMAGENET_PER_CLASS = 50


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Batched pipelines and sizes of one dataset (see `lqsearch.data`).

    Attributes:
        name: source name. family: "cifar", "imagenet" or "mnist".
        train, search_train, search_val, test: batched `tf.data.Dataset`s of
            (float32 images in [0, 1], int32 labels).
        input_shape: (H, W, C) of the images the pipelines yield.
        num_classes: number of classes; labels are 0..num_classes-1.
        num_train, num_search_train, num_search_val, num_test: example counts
            (num_search_train + num_search_val == num_train).
        batch_size, eval_batch_size: batch sizes of training / eval pipelines.
        arrays: raw uint8 (images, labels) per split for in-memory sources, or
            None for streamed ones (ImageNet).
    """

    name: str
    family: str
    train: tf.data.Dataset = dataclasses.field(repr=False)
    search_train: tf.data.Dataset = dataclasses.field(repr=False)
    search_val: tf.data.Dataset = dataclasses.field(repr=False)
    test: tf.data.Dataset = dataclasses.field(repr=False)
    input_shape: tuple
    num_classes: int
    num_train: int
    num_search_train: int
    num_search_val: int
    num_test: int
    batch_size: int
    eval_batch_size: int
    arrays: dict | None = dataclasses.field(default=None, repr=False, compare=False)

    def pipeline(self, split):
        """Return the pipeline of `split` (one of `SPLITS`, else DataError)."""
        return getattr(self, _check_split(split))

    def num_examples(self, split):
        """Return the number of examples of `split` (one of `SPLITS`)."""
        return getattr(self, f"num_{_check_split(split)}")

    def num_batches(self, split):
        """Return the number of batches one pass over `split` yields."""
        size = self.batch_size if split in ("train", "search_train") else self.eval_batch_size
        return math.ceil(self.num_examples(split) / size)

    def batched(self, split, batch_size):
        """The pipeline of `split` in batches of `batch_size` (the pipeline itself when it already is).

        Training presets carry their own batch size (e.g. 512 for Phan et al.'s schedule);
        the pipelines are built with `batch_size` / `eval_batch_size`. The rebatched
        pipeline keeps a known length, so an epoch is one pass.
        """
        size = self.batch_size if split in ("train", "search_train") else self.eval_batch_size
        batch_size = check_int("batch_size", batch_size, minimum=1, error=DataError)
        if batch_size == size:
            return self.pipeline(split)
        length = math.ceil(self.num_examples(split) / batch_size)
        rebatched = self.pipeline(split).unbatch().batch(batch_size)
        return rebatched.apply(tf.data.experimental.assert_cardinality(length)).prefetch(tf.data.AUTOTUNE)

    def take_batches(self, split, count):
        """Return the first `count` batches of `split` as numpy (images, labels) pairs."""
        return [(x.numpy(), y.numpy()) for x, y in self.pipeline(split).take(count)]


def _check_split(split):
    """Return `split` if it is one of `SPLITS`, else raise DataError."""
    return check_choice("split", split, SPLITS, error=DataError)


@dataclasses.dataclass(frozen=True)
class Options:
    """Validated loading options shared by every source."""

    batch_size: int
    eval_batch_size: int
    image_size: tuple | None
    seed: int
    search_fraction: float | None
    search_val_per_class: int | None
    search_train_per_class: int | None
    train_limit: int | None
    test_limit: int | None
    augment: bool
    family: str | None
    deterministic: bool | None = None


def make_options(*, batch_size=128, eval_batch_size=None, image_size=None, seed=0,
                 search_fraction=None, search_val_per_class=None, search_train_per_class=None,
                 train_limit=None, test_limit=None, augment=True, family=None, deterministic=None):
    """Validate the options of `load_dataset` / `from_arrays` into an `_Options`.

    Raises:
        DataError: an option has a bad value, or both split options are given.
    """
    if search_fraction is not None and search_val_per_class is not None:
        raise DataError("give search_fraction or search_val_per_class, not both: each sizes search_val.")
    search_fraction = check_number("search_fraction", search_fraction, minimum=0, maximum=1, low_open=True,
                                   high_open=True, allow_none=True, error=DataError)
    seed = check_int("seed", seed, minimum=0, error=DataError)
    if family is not None:
        check_choice("family", family, FAMILIES, error=DataError)
    if image_size is not None:
        sizes = (image_size, image_size) if np.ndim(image_size) == 0 else tuple(image_size)
        if len(sizes) != 2:
            raise DataError(f"image_size must be an int or (height, width), got {image_size!r}.")
        image_size = tuple(check_int("image_size", size, minimum=1, error=DataError) for size in sizes)
    batch_size = check_int("batch_size", batch_size, minimum=1, error=DataError)
    eval_batch_size = check_int("eval_batch_size", eval_batch_size, minimum=1, allow_none=True, error=DataError)
    return Options(
        batch_size=batch_size, eval_batch_size=eval_batch_size or batch_size, image_size=image_size, seed=seed,
        search_fraction=search_fraction,
        search_val_per_class=check_int("search_val_per_class", search_val_per_class, minimum=1, allow_none=True,
                                       error=DataError),
        search_train_per_class=check_int("search_train_per_class", search_train_per_class, minimum=1, allow_none=True,
                                         error=DataError),
        train_limit=check_int("train_limit", train_limit, minimum=1, allow_none=True, error=DataError),
        test_limit=check_int("test_limit", test_limit, minimum=1, allow_none=True, error=DataError),
        augment=check_bool("augment", augment, error=DataError), family=family,
        deterministic=None if deterministic is None else check_bool("deterministic", deterministic, error=DataError))


