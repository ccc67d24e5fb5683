"""Datasets for the search and for the final retraining.

One entry point, `load_dataset(source, ...)`, returns a `Dataset` with four
batched `tf.data` pipelines:

- `train`: the full train set, for the final retraining;
- `search_train` / `search_val`: a disjoint, stratified split of the TRAIN
  set, used by the search; the test set never enters the search;
- `test`: the test set, for the final evaluation only.

Every pipeline yields `(images, labels)`: images are float32 in [0, 1] with
shape (batch, H, W, C) (grayscale images get C = 1), labels are int32 class
indices. Nothing is mean/std-normalized; do that in the model if wanted.

Training pipelines (`train`, `search_train`) are shuffled with the seed and
augmented per family: "cifar" pads by 4 and random-crops, then flips;
"imagenet" random-resized-crops to `image_size` (224) and flips, while the
evaluation pipelines resize the shorter side to 256/224 of it and centre-crop;
"mnist" gets no augmentation. In-memory sources hold their uint8 images in
memory; when `image_size` resizes them, the resized uint8 images are cached
before augmentation. ImageNet streams from disk and is not cached.
Sources: see `list_sources()`.
"""
import dataclasses
import difflib
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from lqsearch import _idx

TFDS_SOURCES = {"cifar10": "cifar", "cifar100": "cifar", "mnist": "mnist",
                "fashion_mnist": "mnist", "imagenet2012": "imagenet"}
LOCAL_SOURCES = {"fashion_mnist_local": "mnist", "embedded": "mnist"}
NPZ_PREFIX = "npz:"
FAMILIES = ("cifar", "imagenet", "mnist")
SPLITS = ("train", "search_train", "search_val", "test")
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
DEFAULT_SEARCH_FRACTION = 0.1
DEFAULT_IMAGENET_PER_CLASS = 50
IMAGENET_CROP = 224
IMAGENET_RESIZE_RATIO = 256 / 224
CIFAR_PAD = 4
STREAM_SHUFFLE_BUFFER = 10_000
_SALT = {"train": 1, "search_train": 2, "augment": 3}


class DataError(ValueError):
    """Bad dataset name, file, array or option: the message says what and how to fix it."""


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """A parsed dataset source string.

    Attributes:
        kind: "tfds", "local" or "npz".
        name: the source name ("cifar10", "embedded", "npz", ...).
        family: default augmentation family, or None to infer from the images.
        path: the file of an `npz:PATH` source, else None.
    """

    kind: str
    name: str
    family: str | None
    path: Path | None = None


def list_sources():
    """Return the valid source names (a list of str); `npz:PATH` stands for any `.npz` path."""
    return sorted(TFDS_SOURCES) + sorted(LOCAL_SOURCES) + [NPZ_PREFIX + "PATH"]


def parse_source(source):
    """Check a source string without loading anything.

    Arguments:
        source: a name from `list_sources()` or `npz:PATH`.

    Returns:
        A `SourceSpec`.

    Raises:
        DataError: unknown name (with the valid ones and the closest match), or
            an `npz:` prefix without a path.
    """
    if not isinstance(source, str):
        raise DataError(f"dataset source must be a string, got {type(source).__name__}.")
    if source.startswith(NPZ_PREFIX):
        path = source[len(NPZ_PREFIX):].strip()
        if not path:
            raise DataError(f"dataset source {source!r} has no path. "
                            "Fix: 'npz:/path/to/data.npz'.")
        return SourceSpec("npz", "npz", None, Path(path).expanduser())
    if source in TFDS_SOURCES:
        return SourceSpec("tfds", source, TFDS_SOURCES[source])
    if source in LOCAL_SOURCES:
        return SourceSpec("local", source, LOCAL_SOURCES[source])
    names = sorted(TFDS_SOURCES) + sorted(LOCAL_SOURCES)
    close = difflib.get_close_matches(source.lower(), names, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DataError(f"unknown dataset source {source!r}.{hint} Valid sources: "
                    f"{', '.join(list_sources())}.")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Batched pipelines and sizes of one dataset (see the module docstring).

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

    def take_batches(self, split, count):
        """Return the first `count` batches of `split` as numpy (images, labels) pairs."""
        return [(x.numpy(), y.numpy()) for x, y in self.pipeline(split).take(count)]


def _check_split(split):
    """Return `split` if it is one of `SPLITS`, else raise DataError."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}.")
    return split


@dataclasses.dataclass(frozen=True)
class _Options:
    """Validated loading options shared by every source."""

    batch_size: int
    eval_batch_size: int
    image_size: tuple | None
    seed: int
    search_fraction: float | None
    search_per_class: int | None
    train_limit: int | None
    test_limit: int | None
    augment: bool
    family: str | None


def _positive_int(name, value, *, optional=True):
    """Return `value` if it is a positive int (or None when optional), else raise DataError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _make_options(*, batch_size=128, eval_batch_size=None, image_size=None, seed=0,
                  search_fraction=None, search_per_class=None, train_limit=None,
                  test_limit=None, augment=True, family=None):
    """Validate the options of `load_dataset` / `from_arrays` into an `_Options`.

    Raises:
        DataError: an option has a bad value, or both split options are given.
    """
    if search_fraction is not None and search_per_class is not None:
        raise DataError("give search_fraction or search_per_class, not both.")
    if search_fraction is not None and not (
            isinstance(search_fraction, (float, int, np.number)) and 0 < search_fraction < 1):
        raise DataError(f"search_fraction must lie strictly between 0 and 1, got "
                        f"{search_fraction!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}.")
    if family is not None and family not in FAMILIES:
        raise DataError(f"unknown family {family!r}; valid families: {', '.join(FAMILIES)}.")
    if image_size is not None:
        sizes = (image_size, image_size) if np.ndim(image_size) == 0 else tuple(image_size)
        if len(sizes) != 2:
            raise DataError(f"image_size must be an int or (height, width), got {image_size!r}.")
        image_size = tuple(_positive_int("image_size", size, optional=False) for size in sizes)
    batch_size = _positive_int("batch_size", batch_size, optional=False)
    return _Options(
        batch_size=batch_size,
        eval_batch_size=_positive_int("eval_batch_size", eval_batch_size) or batch_size,
        image_size=image_size, seed=int(seed),
        search_fraction=None if search_fraction is None else float(search_fraction),
        search_per_class=_positive_int("search_per_class", search_per_class),
        train_limit=_positive_int("train_limit", train_limit),
        test_limit=_positive_int("test_limit", test_limit),
        augment=bool(augment), family=family)


def load_dataset(source, *, data_dir=None, manual_dir=None, download=False, batch_size=128,
                 eval_batch_size=None, image_size=None, seed=0, search_fraction=None,
                 search_per_class=None, train_limit=None, test_limit=None, augment=True,
                 family=None):
    """Load a dataset and build its train / search / test pipelines.

    Arguments:
        source: a name from `list_sources()` ("cifar10", "cifar100", "mnist",
            "fashion_mnist", "imagenet2012", "fashion_mnist_local", "embedded")
            or "npz:PATH" (keys x_train, y_train, x_test, y_test; uint8 images
            (N, H, W) or (N, H, W, C); integer labels).
        data_dir: tfds data dir for tfds sources; the IDX folder for
            "fashion_mnist_local" (default /usr/share/datasets/fashion-mnist).
        manual_dir: imagenet2012 only: folder with ILSVRC2012_img_train.tar and
            ILSVRC2012_img_val.tar, used to prepare the dataset when data_dir
            does not hold it yet (no network is needed).
        download: allow tfds to download a missing dataset (default False).
        batch_size, eval_batch_size: batch sizes of the training pipelines
            and of the evaluation ones (default: batch_size).
        image_size: int or (H, W) to resize to (ImageNet: the crop, 224).
        seed: seed of the search split, the shuffling and the augmentation.
        search_fraction: share of each train class held out as search_val
            (default 0.1); or search_per_class: images per class held out
            (ImageNet accepts only this one; default 50).
        train_limit, test_limit: keep a stratified subset of this size
            (ImageNet: the first examples in file order).
        augment: augment the training pipelines (see the module docstring).
        family: "cifar", "imagenet" or "mnist" to override the augmentation
            family (default: from the source, or inferred from the images).

    Returns:
        A `Dataset`.

    Raises:
        DataError: unknown source, bad option, missing or malformed data, or a
            tfds dataset that is not prepared and may not be downloaded.
    """
    spec = parse_source(source)
    opts = _make_options(
        batch_size=batch_size, eval_batch_size=eval_batch_size, image_size=image_size,
        seed=seed, search_fraction=search_fraction, search_per_class=search_per_class,
        train_limit=train_limit, test_limit=test_limit, augment=augment, family=family)
    if spec.family == "imagenet":
        return _load_imagenet(spec.name, opts, data_dir=data_dir, manual_dir=manual_dir)
    if spec.kind == "tfds":
        arrays = _idx.read_tfds_arrays(spec.name, data_dir=data_dir, download=download)
    elif spec.kind == "npz":
        arrays = _idx.read_npz(spec.path)
    elif spec.name == "fashion_mnist_local":
        arrays = _idx.read_fashion_mnist_dir(data_dir or DEFAULT_FASHION_MNIST_DIR)
    else:
        arrays = _idx.read_embedded()
    return _dataset_from_checked(spec.name, arrays, spec.family, opts)


def from_arrays(x_train, y_train, x_test, y_test, *, name="arrays", num_classes=None,
                **options):
    """Build a `Dataset` from numpy arrays held by the caller.

    Arguments:
        x_train, x_test: uint8 images, (N, H, W) or (N, H, W, C) with C in {1, 3}.
        y_train, y_test: integer labels 0..num_classes-1, shape (N,) or (N, 1).
        name: the `Dataset.name`.
        num_classes: number of classes (default: max(y_train) + 1).
        **options: as for `load_dataset`.

    Returns:
        A `Dataset`; the family is inferred from the images unless given.

    Raises:
        DataError: bad arrays or options.
    """
    opts = _make_options(**options)
    arrays = _idx.check_arrays({"x_train": x_train, "y_train": y_train, "x_test": x_test,
                                "y_test": y_test}, where=name, num_classes=num_classes)
    return _dataset_from_checked(name, arrays, None, opts)


def _load_imagenet(name, opts, *, data_dir, manual_dir):
    """Stream ImageNet from tfds; search_val holds the first K images per class.

    ImageNet stays on disk: nothing is cached, `arrays` is None, and the split
    is made in file order, so the seed only drives shuffling and augmentation.
    Without train_limit, the counts assume that every class has at least
    `search_per_class` train images (ImageNet-1k has at least 732).

    Raises:
        DataError: search_fraction or a non-ImageNet family was asked for, the
            data are not prepared, or the split would be empty.
    """
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    if opts.search_fraction is not None or opts.family not in (None, "imagenet"):
        raise DataError(f"{name} streams from disk: use search_per_class (default "
                        f"{DEFAULT_IMAGENET_PER_CLASS}), not search_fraction, and no family.")
    builder = tfds.builder(name, data_dir=data_dir)
    _idx.prepare_imagenet(builder, manual_dir, IMAGENET_MANUAL_FILES)
    num_classes = builder.info.features["label"].num_classes
    per_class = opts.search_per_class or DEFAULT_IMAGENET_PER_CLASS
    ordered = _idx.tfds_stream(builder, "train", shuffle_files=False)
    test = _idx.tfds_stream(builder, "validation", shuffle_files=False)
    if opts.train_limit:
        ordered = ordered.take(opts.train_limit)
        counts = _idx.count_labels(builder, "train", limit=opts.train_limit,
                                   num_classes=num_classes)
        num_train, num_val = int(counts.sum()), int(np.minimum(counts, per_class).sum())
        train = ordered
    else:
        num_train, num_val = _idx.split_size(builder, ordered, "train"), per_class * num_classes
        train = _idx.tfds_stream(builder, "train", shuffle_files=True,
                                 read_config=tfds.ReadConfig(shuffle_seed=opts.seed))
    test = test.take(opts.test_limit) if opts.test_limit else test
    if not 0 < num_val < num_train:
        raise DataError(f"{name}: {num_train} train images cannot hold search_per_class="
                        f"{per_class} x {num_classes} classes and leave some for search_train."
                        " Fix: lower search_per_class or raise train_limit.")
    tagged = _tag_first_per_class(ordered, num_classes, per_class)
    streams = {"train": train, "test": test,
               "search_train": tagged.filter(lambda image, label, is_val: tf.logical_not(is_val)),
               "search_val": tagged.filter(lambda image, label, is_val: is_val)}
    counts = {"train": num_train, "search_train": num_train - num_val, "search_val": num_val,
              "test": _idx.split_size(builder, test, "validation")}
    size = opts.image_size or (IMAGENET_CROP, IMAGENET_CROP)
    pipelines = {
        split: _build_pipeline(stream.map(lambda image, label, *_: (image, label)),
                              split=split, family="imagenet", size=size, opts=opts,
                              native_size=None, num_examples=counts[split])
        for split, stream in streams.items()}
    return Dataset(name=name, family="imagenet", input_shape=(*size, 3),
                   num_classes=num_classes, num_train=num_train,
                   num_search_train=counts["search_train"], num_search_val=num_val,
                   num_test=counts["test"], batch_size=opts.batch_size,
                   eval_batch_size=opts.eval_batch_size, **pipelines)


def _tag_first_per_class(stream, num_classes, per_class):
    """Tag each (image, label) with is_val: True for the first `per_class` of its class."""
    def step(seen, example):
        image, label = example
        index = tf.cast(label, tf.int32)
        is_val = seen[index] < per_class
        return tf.tensor_scatter_nd_add(seen, [[index]], [1]), (image, label, is_val)
    return stream.scan(tf.zeros([num_classes], tf.int32), step)


def _infer_family(input_shape):
    """Guess the family of (H, W, C) images: "mnist" if C == 1, else "cifar" up to 64x64."""
    if input_shape[-1] == 1:
        return "mnist"
    return "cifar" if max(input_shape[:2]) <= 64 else "imagenet"


def _stratified_selection(labels, *, count=None, per_class=None, rng):
    """Pick sorted int64 indices of a stratified random subset of `labels` (int array).

    `count` gives the exact total, shared by classes in proportion to their
    sizes (largest remainders); `per_class` instead takes that many of each
    class (all of a smaller class). `rng` is a `numpy.random.Generator`.
    """
    classes, sizes = np.unique(labels, return_counts=True)
    if per_class is not None:
        quotas = np.minimum(sizes, per_class)
    else:
        exact = sizes * count / len(labels)
        quotas = np.floor(exact).astype(np.int64)
        remainder_order = np.argsort(-(exact - quotas), kind="stable")
        quotas[remainder_order[:count - quotas.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:quota]
              for label, quota in zip(classes, quotas)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _limit(images, labels, limit, rng):
    """Return a stratified subset of `limit` examples (all of them if limit is None)."""
    if limit is None or limit >= len(labels):
        return images, labels
    keep = _stratified_selection(labels, count=limit, rng=rng)
    return images[keep], labels[keep]


def _search_split(labels, opts, rng):
    """Split train indices into (search_train, search_val); DataError if one is empty."""
    if opts.search_per_class is not None:
        val = _stratified_selection(labels, per_class=opts.search_per_class, rng=rng)
    else:
        fraction = opts.search_fraction or DEFAULT_SEARCH_FRACTION
        val = _stratified_selection(labels, count=round(len(labels) * fraction), rng=rng)
    train = np.setdiff1d(np.arange(len(labels)), val)
    if len(val) == 0 or len(train) == 0:
        raise DataError(f"the train set ({len(labels)} examples) is too small for this search "
                        f"split: search_train gets {len(train)}, search_val {len(val)}. Fix: "
                        "change search_fraction / search_per_class or train_limit.")
    return train, val


def _dataset_from_checked(name, arrays, family, opts):
    """Build a `Dataset` from checked in-memory arrays (see `_idx.check_arrays`)."""
    rng = np.random.default_rng(opts.seed)
    x_train, y_train = _limit(arrays["x_train"], arrays["y_train"], opts.train_limit, rng)
    x_test, y_test = _limit(arrays["x_test"], arrays["y_test"], opts.test_limit, rng)
    search_train, search_val = _search_split(y_train, opts, rng)
    raw = {"train": (x_train, y_train),
           "search_train": (x_train[search_train], y_train[search_train]),
           "search_val": (x_train[search_val], y_train[search_val]),
           "test": (x_test, y_test)}
    family = opts.family or family or _infer_family(x_train.shape[1:])
    size = opts.image_size or (
        (IMAGENET_CROP, IMAGENET_CROP) if family == "imagenet" else x_train.shape[1:3])
    pipelines = {}
    for split, (images, labels) in raw.items():
        stream = tf.data.Dataset.from_tensor_slices((images, labels))
        pipelines[split] = _build_pipeline(
            stream, split=split, family=family, size=size, opts=opts,
            native_size=images.shape[1:3], num_examples=len(labels))
    return Dataset(
        name=name, family=family, input_shape=(*size, x_train.shape[-1]),
        num_classes=arrays["num_classes"], num_train=len(y_train),
        num_search_train=len(search_train), num_search_val=len(search_val),
        num_test=len(y_test), batch_size=opts.batch_size,
        eval_batch_size=opts.eval_batch_size, arrays=raw, **pipelines)


def _split_seed(seed, salt):
    """Derive a 31-bit seed for one pipeline from the user seed."""
    return (int(seed) * 1_000_003 + salt) % (2**31 - 1)


def _build_pipeline(stream, *, split, family, size, opts, native_size, num_examples):
    """Turn an unbatched (uint8 image, integer label) stream into a batched pipeline.

    Arguments:
        stream: unbatched `tf.data.Dataset` of (uint8 HxWxC image, label).
        split: one of `SPLITS`; "train" and "search_train" are training splits.
        family: "cifar", "imagenet" or "mnist".
        size: (H, W) of the output images.
        opts: the `_Options`.
        native_size: (H, W) of the in-memory stream's images, or None for a
            stream read from disk (images of varying size, bounded shuffle).
        num_examples: size of the stream.

    Returns:
        A batched, prefetched `tf.data.Dataset` of (float32 images in [0, 1],
        int32 labels).
    """
    training = split in ("train", "search_train")
    size = tuple(int(s) for s in size)
    stream = stream.map(lambda image, label: (image, tf.cast(label, tf.int32)))
    in_memory = native_size is not None
    if family != "imagenet" and in_memory and tuple(native_size) != size:
        stream = stream.map(lambda image, label: (_resize_uint8(image, size), label),
                            num_parallel_calls=tf.data.AUTOTUNE).cache()
    if training:
        buffer = num_examples if in_memory else min(num_examples, STREAM_SHUFFLE_BUFFER)
        stream = stream.shuffle(max(buffer, 1), seed=_split_seed(opts.seed, _SALT[split]),
                                reshuffle_each_iteration=True)
    if training and opts.augment and family != "mnist":
        stream = _augment(stream, family=family, size=size,
                          seed=_split_seed(opts.seed, _SALT["augment"] + _SALT[split]))
    elif family == "imagenet":
        stream = stream.map(lambda image, label: (_resize_centre_crop(image, size), label),
                            num_parallel_calls=tf.data.AUTOTUNE)
    stream = stream.map(lambda image, label: (tf.cast(image, tf.float32) / 255.0, label),
                        num_parallel_calls=tf.data.AUTOTUNE)
    batch_size = opts.batch_size if training else opts.eval_batch_size
    return stream.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _augment(stream, *, family, size, seed):
    """Apply the random augmentation of `family`, seeded per element and per epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    augment = _pad_crop_flip if family == "cifar" else _random_resized_crop_flip
    return tf.data.Dataset.zip((stream, seeds)).map(
        lambda example, pair: (augment(example[0], pair, size), example[1]),
        num_parallel_calls=tf.data.AUTOTUNE)


def _resize_uint8(image, size):
    """Resize a uint8 image (bilinear) and round it back to uint8."""
    resized = tf.image.resize(image, size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _pad_crop_flip(image, seed, size):
    """CIFAR augmentation: zero-pad by 4, random crop back to `size`, random flip."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    padded = tf.image.pad_to_bounding_box(image, CIFAR_PAD, CIFAR_PAD,
                                          size[0] + 2 * CIFAR_PAD, size[1] + 2 * CIFAR_PAD)
    channels = tf.shape(image)[-1]
    cropped = tf.image.stateless_random_crop(padded, tf.stack([size[0], size[1], channels]),
                                             seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)


def _random_resized_crop_flip(image, seed, size):
    """ImageNet augmentation: crop 8%-100% of the area, aspect 3/4-4/3, resize, flip."""
    box_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=box_seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, box_size)
    resized = tf.image.resize(crop, size, method="bilinear")
    return tf.image.stateless_random_flip_left_right(resized, seed=flip_seed)


def _resize_centre_crop(image, size):
    """ImageNet evaluation: resize the shorter side to 256/224 of `size`, centre-crop."""
    target = round(max(size) * IMAGENET_RESIZE_RATIO)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = target / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), tf.constant(size))
    resized = tf.image.resize(image, new_shape, method="bilinear")
    top = (new_shape[0] - size[0]) // 2
    left = (new_shape[1] - size[1]) // 2
    return tf.image.crop_to_bounding_box(resized, top, left, size[0], size[1])
