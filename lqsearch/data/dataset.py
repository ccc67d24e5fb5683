"""`Dataset`: the batched pipelines of one dataset (seeded passes per split), and the loading options of sources."""
import dataclasses
import math

import tensorflow as tf

from lqsearch.checks import check_choice, check_int
from lqsearch.config import ConfigError
from lqsearch.data.config import DataConfig
from lqsearch.data.errors import DataError

__all__ = ["Dataset", "SeededSplit", "Options", "make_options", "data_config", "SPLITS", "DEFAULT_SEARCH_FRACTION",
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
        sources: the `SplitPipeline` of each split: its passes under any seed (`pipeline`, `seeded`).

    The `train` and `search_train` attributes are pass 0 under the data seed. A training takes its
    passes from `seeded(split, seed)` instead: pass e under seed s is the same batches whatever the
    process did before (see `lqsearch.data.pipelines`), with uint8 images that the trainer converts
    on the device (`lqsearch.pixels`).
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
    sources: dict | None = dataclasses.field(default=None, repr=False, compare=False)

    def pipeline(self, split, *, seed=None, epoch=0, batch_size=None):
        """One batched pass over `split`.

        Arguments:
            split: one of `SPLITS`.
            seed: with `epoch`, fixes a training split's order and augmentation (None: the data seed).
            epoch: which pass.
            batch_size: examples per batch (None: the split's batch size).

        Returns:
            A `tf.data.Dataset` of known length; the same arguments give the same batches.

        Raises:
            DataError: on an unknown split or a bad seed or batch size.
        """
        split = _check_split(split)
        if seed is None and epoch == 0 and batch_size is None:
            return getattr(self, split)
        return self._source(split).passes(self._seed(seed), batch_size=batch_size, first_epoch=epoch)

    def scoring_pass(self, split):
        """The pass the search and the study score on: `pipeline(split)`'s batches, with uint8 images.

        `lqsearch.training.evaluate` converts them on the device, bit for bit as the host would
        (`lqsearch.pixels`). A dataset built without its split sources gives `pipeline(split)` itself.
        """
        split = _check_split(split)
        if self.sources is None:
            return getattr(self, split)
        return self._source(split).passes(self._seed(None), pixels=True)

    def seeded(self, split, seed, batch_size=None):
        """`split` under the training seed `seed`: what `lqsearch.training.fit` trains on (uint8 images).

        Arguments:
            split: one of `SPLITS`.
            seed: an integer >= 0; epoch e of a training gets pass e under it.
            batch_size: examples per batch (None: the split's batch size).

        Returns:
            A `SeededSplit`.

        Raises:
            DataError: on an unknown split or a bad seed or batch size.
        """
        source = self._source(_check_split(split))
        return SeededSplit(source, self._seed(seed),
                           check_int("batch_size", batch_size or source.batch_size, minimum=1, error=DataError))

    def _source(self, split):
        """The `SplitPipeline` of `split` (DataError for a Dataset built without them)."""
        if self.sources is None:
            raise DataError(f"the dataset {self.name!r} was built without its split sources; load it with "
                            "lqsearch.data.load_dataset or from_arrays.")
        return self.sources[split]

    def _seed(self, seed):
        """`seed` checked, or the data seed for None."""
        return self._source(SPLITS[0]).opts.seed if seed is None else check_int("seed", seed, minimum=0,
                                                                                   error=DataError)

    def num_examples(self, split):
        """Return the number of examples of `split` (one of `SPLITS`)."""
        return getattr(self, f"num_{_check_split(split)}")

    def num_batches(self, split):
        """Return the number of batches one pass over `split` yields."""
        size = self.batch_size if split in ("train", "search_train") else self.eval_batch_size
        return math.ceil(self.num_examples(split) / size)

    def batched(self, split, batch_size):
        """The pipeline of `split` (pass 0 under the data seed) in batches of `batch_size`, of known length.

        Training presets carry their own batch size (e.g. 512 for Phan et al.'s schedule);
        the pipelines are built with `batch_size` / `eval_batch_size`.
        """
        size = self.batch_size if split in ("train", "search_train") else self.eval_batch_size
        batch_size = check_int("batch_size", batch_size, minimum=1, error=DataError)
        return self.pipeline(split) if batch_size == size else self.pipeline(split, seed=None, batch_size=batch_size)

    def take_batches(self, split, count):
        """Return the first `count` batches of `split` as numpy (images, labels) pairs."""
        return [(x.numpy(), y.numpy()) for x, y in self.pipeline(split).take(count)]


@dataclasses.dataclass(frozen=True)
class SeededSplit:
    """One split under one training seed: pass e is a function of (seed, split, e) (`lqsearch.training.EpochData`).

    Its passes yield (uint8 images, int32 labels): `lqsearch.training.fit` and the supernet convert the
    images on the device with `lqsearch.pixels.images_to_float` (a model of your own trained on them
    directly would see 0..255; wrap it with `lqsearch.pixels.float_input`).
    """

    source: object = dataclasses.field(repr=False)
    seed: int
    batch_size: int

    @property
    def num_batches(self):
        """Batches in one pass."""
        return self.source.num_batches(self.batch_size)

    def passes(self, first_epoch, epochs, steps=None):
        """The passes `first_epoch` .. `first_epoch + epochs - 1` (each cut to `steps` batches), in one pipeline."""
        return self.source.passes(self.seed, batch_size=self.batch_size, first_epoch=first_epoch, epochs=epochs,
                                  steps=steps, pixels=True)


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
