"""`Dataset`: the four batched pipelines of one dataset, and the loading options shared by every source."""
import dataclasses
import math

import tensorflow as tf

from lqsearch.checks import check_choice, check_int
from lqsearch.config import ConfigError
from lqsearch.data.config import DataConfig
from lqsearch.data.errors import DataError

__all__ = ["Dataset", "Options", "make_options", "data_config", "SPLITS", "DEFAULT_SEARCH_FRACTION",
           "DEFAULT_IMAGENET_PER_CLASS"]

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
    """Loading options shared by every source, resolved from a validated `DataConfig` (`make_options`)."""

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


def make_options(config: DataConfig) -> Options:
    """The resolved `Options` of a validated `DataConfig` (eval batch size and (H, W) filled in)."""
    return Options(
        batch_size=config.batch_size, eval_batch_size=config.eval_batch_size or config.batch_size,
        image_size=config.image_hw, seed=config.seed, search_fraction=config.search_fraction,
        search_val_per_class=config.search_val_per_class, search_train_per_class=config.search_train_per_class,
        train_limit=config.train_limit, test_limit=config.test_limit, augment=config.augment, family=config.family,
        deterministic=config.deterministic)


def data_config(config: DataConfig | None, options: dict) -> DataConfig:
    """`config`, or a `DataConfig` of keyword `options`; a refused value becomes a `DataError`."""
    if config is not None:
        if options:
            raise DataError(f"got config= and the options {sorted(options)}; give one or the other "
                            "(config.replace(...) changes a config).")
        return config
    try:
        return DataConfig(**options)
    except ConfigError as error:
        raise DataError(str(error)) from None
