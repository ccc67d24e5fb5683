"""Batched `tf.data` pipelines: seeded passes (shuffling, per-family augmentation), resizing, scaling to [0, 1].

Training pipelines (`train`, `search_train`) are shuffled and augmented per family:
"cifar" pads by 4 and random-crops, then flips; "imagenet" random-resized-crops to the
crop size and flips, while the evaluation pipelines resize the shorter side to 256/224
of it and centre-crop; "mnist" gets no augmentation.

**Seeds.** A training split is a `SplitPipeline`: its pass number `epoch` under `seed` is a
function of (seed, split, epoch) only, never of how often a pipeline was iterated before
(no `reshuffle_each_iteration`, no `rerandomize_each_iteration`). The shuffle buffer is
seeded from the pass's key, and each element's augmentation seed is the key folded with
the element's position in the pass (stateless random ops). `passes(seed, first_epoch=k,
epochs=n)` chains the passes k..k+n-1 in one pipeline of known length (one `flat_map`
over the epoch numbers), which is what `lqsearch.training.fit` trains on: a run resumed
at epoch k sees the batches an uninterrupted one saw there.

ImageNet streams hold encoded JPEG bytes: the shuffle buffer holds bytes, training
crops decode only their box (`tf.image.decode_and_crop_jpeg`, the box drawn by
`sample_distorted_bounding_box` as in the Inception/ResNet preprocessing) and
evaluation decodes only its centre crop. Images stay uint8 through the pipeline. A pass
with `pixels=True` (the training passes, `Dataset.seeded`) yields them as uint8, for the
trainer to convert on the device (`lqsearch.pixels`); otherwise each batch is converted to
float32 in [0, 1] as its last step, by the same `images_to_float`. Every pipeline states
its length.

**Threads.** Every pipeline runs on a private pool of `pipeline_threads()` threads (twice the
CPUs the process may use), and its maps and batches make that many parallel calls; tf.data's
model-based autotuning is off (`pipeline_options`). With autotuning on (TF 2.15), the same
pipeline ran each pass in one of two modes fixed at its start, one of them on a single core
at about half the throughput, although the tuned parallelism was the same in both
(bench/bench_imagenet_path.py measures it).
"""
import math
import os

import tensorflow as tf

from lqsearch.pixels import images_to_float

__all__ = ["build_pipeline", "SplitPipeline", "FAMILIES", "IMAGENET_CROP", "pipeline_options", "pipeline_threads"]

FAMILIES = ("cifar", "imagenet", "mnist")
IMAGENET_CROP = 224
IMAGENET_RESIZE_RATIO = 256 / 224
CIFAR_PAD = 4
STREAM_SHUFFLE_BUFFER = 10_000
TRAINING_SPLITS = ("train", "search_train")
_SALT = {"train": 1, "search_train": 2, "augment": 3}
#: The graph-level seed of every pass's shuffle op (set inside the traced pass only), so that its
#: order depends on the pass's key and not on the global seed in force when the pipeline was built.
_PASS_GRAPH_SEED = 1_000_003


def pipeline_threads() -> int:
    """Threads of a pipeline's pool and parallel calls of each of its maps: twice the usable CPUs.

    Twice, not once: a thread that waits (for its input, or for a batch's copy) leaves its CPU
    idle otherwise (bench/bench_imagenet_path.py part 2 compares the two).
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 * max(1, usable or 1)


def pipeline_options(*, deterministic: bool) -> tf.data.Options:
    """The `tf.data.Options` of every pipeline: fixed parallelism on a private pool, no model-based autotuning.

    `deterministic` keeps the element order of parallel maps (False hands elements out as they
    are ready). Autotuning is off because it made passes bimodal (module docstring); the prefetch
    buffers keep their own (legacy) sizing.
    """
    options = tf.data.Options()
    options.deterministic = deterministic
    options.autotune.enabled = False
    options.threading.private_threadpool_size = pipeline_threads()
    options.experimental_optimization.map_parallelization = True
    options.experimental_optimization.parallel_batch = True
    return options


def _split_seed(seed, salt):
    """Derive a 31-bit seed for one pipeline from the user seed."""
    return (int(seed) * 1_000_003 + salt) % (2**31 - 1)


def build_pipeline(stream, *, split, family, size, opts, native_size, num_examples, encoded=False):
    """Turn an unbatched (uint8 image, integer label) stream into a `SplitPipeline`.

    Arguments:
        stream: unbatched `tf.data.Dataset` of (uint8 HxWxC image, label).
        split: one of `SPLITS`; "train" and "search_train" are training splits.
        family: "cifar", "imagenet" or "mnist".
        size: (H, W) of the output images.
        opts: the `Options`.
        native_size: (H, W) of the in-memory stream's images, or None for a
            stream read from disk (images of varying size, bounded shuffle).
        encoded: the stream holds encoded JPEG bytes instead of images (ImageNet):
            they are shuffled encoded and decoded after, one decode per image used.
        num_examples: the exact size of the stream; the pipeline states it
            (`cardinality()`), and iterating a stream of another size raises.

    Returns:
        A `SplitPipeline`, whose `passes` are batched, prefetched `tf.data.Dataset`s of
        (images, int32 labels), of known cardinality: float32 images in [0, 1], or uint8 pixels
        for `passes(..., pixels=True)`.
    """
    size = tuple(int(s) for s in size)
    # Every pipeline states its length (a filtered stream does not know it), so an epoch is one pass
    # whatever the batch size; a stream that turns out shorter or longer fails at that point.
    # (Labels are cast to int32 per batch: per-element maps inside a pass are not rewritten by tf.data's
    # static optimizations, and a sequential one cost ~20 us an element.)
    if int(stream.cardinality()) != num_examples:
        stream = stream.apply(tf.data.experimental.assert_cardinality(num_examples))
    in_memory = native_size is not None
    if family != "imagenet" and in_memory and tuple(native_size) != size:
        stream = stream.map(lambda image, label: (_resize_uint8(image, size), label),
                            num_parallel_calls=pipeline_threads()).cache()
    return SplitPipeline(stream, split=split, family=family, size=size, opts=opts, num_examples=num_examples,
                         buffer=num_examples if in_memory else min(num_examples, STREAM_SHUFFLE_BUFFER),
                         encoded=encoded)


class SplitPipeline:
    """The batched passes of one split; for a training split each pass is shuffled and augmented from its key.

    Arguments:
        stream: the unbatched (uint8 image or JPEG bytes, int32 label) stream, of known length.
        split, family, size, opts, num_examples, encoded: as for `build_pipeline`.
        buffer: the shuffle buffer (the whole split in memory, bounded for streams).
    """

    def __init__(self, stream, *, split, family, size, opts, num_examples, buffer, encoded):
        self.stream, self.split, self.family, self.size = stream, split, family, size
        self.num_examples, self.buffer, self.encoded, self.opts = num_examples, max(buffer, 1), encoded, opts
        self.training = split in TRAINING_SPLITS
        self.batch_size = opts.batch_size if self.training else opts.eval_batch_size
        self.augment = None
        if self.training and opts.augment and family != "mnist":
            self.augment = _decode_random_crop_flip if encoded else (
                _pad_crop_flip if family == "cifar" else _random_resized_crop_flip)

    def num_batches(self, batch_size=None):
        """Batches in one pass of `batch_size` (default: the split's batch size)."""
        return math.ceil(self.num_examples / (batch_size or self.batch_size))

    def passes(self, seed, *, batch_size=None, first_epoch=0, epochs=1, steps=None, pixels=False):
        """The passes `first_epoch` .. `first_epoch + epochs - 1` under `seed`, one after the other.

        Arguments:
            seed: an integer >= 0; with the split and the epoch number it fixes each pass's order and
                augmentation (evaluation splits are neither shuffled nor augmented: every pass is the same).
            batch_size: examples per batch (default: the split's batch size).
            first_epoch, epochs: which passes.
            steps: keep the first `steps` batches of each pass (default: all).
            pixels: yield uint8 images (0..255), to be converted on the device by
                `lqsearch.pixels.images_to_float`; default float32 images in [0, 1].

        Returns:
            A batched, prefetched `tf.data.Dataset` of known cardinality (`epochs` x batches per pass).
        """
        batch_size = batch_size or self.batch_size
        per_pass = min(self.num_batches(batch_size), steps or self.num_batches(batch_size))
        split_seed = tf.constant(_split_seed(seed, _SALT.get(self.split, 0)), tf.int64)
        epochs_range = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
        chained = epochs_range.flat_map(
            lambda epoch: self._one_pass(tf.stack([split_seed, epoch]), batch_size, pixels).take(per_pass))
        chained = chained.apply(tf.data.experimental.assert_cardinality(epochs * per_pass))
        return chained.prefetch(tf.data.AUTOTUNE).with_options(_options(self.opts, deterministic=not self.encoded))

    def _one_pass(self, key, batch_size, pixels):
        """One batched pass; `key` (int64 [2]: split seed, epoch) fixes its order and augmentation."""
        stream = self.stream
        if self.training:
            tf.random.set_seed(_PASS_GRAPH_SEED)  # traced inside `flat_map`: the pass's graph only
            shuffle_seed = tf.random.stateless_uniform([], seed=key, minval=None, maxval=None, dtype=tf.int64)
            stream = stream.shuffle(self.buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
        if self.augment is not None:
            augment, size = self.augment, self.size
            # One seed pair per position in the pass, split from the pass's key in one op.
            augment_key = tf.random.experimental.stateless_fold_in(key, _SALT["augment"])
            seeds = tf.data.Dataset.from_tensor_slices(
                tf.random.experimental.stateless_split(augment_key, self.num_examples))
            stream = tf.data.Dataset.zip((stream, seeds)).map(
                lambda example, seed: (augment(example[0], seed, size), example[1]),
                num_parallel_calls=pipeline_threads())
        elif self.family == "imagenet":
            centre_crop, size = (_decode_centre_crop if self.encoded else _resize_centre_crop), self.size
            stream = stream.map(lambda image, label: (centre_crop(image, size), label),
                                num_parallel_calls=pipeline_threads())
        # Images stay uint8 up to here; a float batch is converted in one step.
        return stream.batch(batch_size, num_parallel_calls=pipeline_threads()).map(_as_pixels if pixels else _to_float)


def _as_pixels(images, labels):
    """A batch for conversion on the device: uint8 images, int32 labels."""
    return images, tf.cast(labels, tf.int32)


def _to_float(images, labels):
    """A batch as the models take it: float32 images in [0, 1], int32 labels."""
    return images_to_float(images), tf.cast(labels, tf.int32)


def _options(opts, *, deterministic):
    """`pipeline_options` with `opts.deterministic`, else `deterministic` (the source's default).

    Non-deterministic pipelines let parallel maps hand out elements as they are ready
    (throughput); `tf.config.experimental.enable_op_determinism` makes them deterministic anyway.
    """
    return pipeline_options(deterministic=deterministic if opts.deterministic is None else opts.deterministic)


def _resize_uint8(image, size):
    """Resize a uint8 image (bilinear) and round it back to uint8."""
    resized = tf.image.resize(image, size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _round_uint8(resized):
    """A bilinear resize of a uint8 image back to uint8, rounded half up, in two elementwise ops.

    Bilinear weights sum to 1, so the values stay within [0, 255]: no clipping is needed, and
    truncating x + 0.5 rounds. (Cheaper than `_resize_uint8`'s round, clip and cast: three
    passes over a float image, a quarter of the per-image cost of the ImageNet training map.)
    """
    return tf.cast(resized + 0.5, tf.uint8)


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
    """ImageNet augmentation of a decoded image: crop 8%-100% of the area, aspect 3/4-4/3, resize, flip."""
    box_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, box_size = _random_box(tf.shape(image), box_seed)
    crop = tf.slice(image, begin, box_size)
    return tf.image.stateless_random_flip_left_right(_resize_uint8(crop, size), seed=flip_seed)


def _resize_centre_crop(image, size):
    """ImageNet evaluation: resize the shorter side to 256/224 of `size`, centre-crop."""
    target = round(max(size) * IMAGENET_RESIZE_RATIO)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = target / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), tf.constant(size))
    resized = _resize_uint8(image, new_shape)
    top = (new_shape[0] - size[0]) // 2
    left = (new_shape[1] - size[1]) // 2
    return tf.image.crop_to_bounding_box(resized, top, left, size[0], size[1])


def _random_box(shape, seed):
    """A random crop box of an image of `shape` (8%-100% of the area, aspect 3/4-4/3): (begin, size)."""
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
    return begin, box_size


def _decode_random_crop_flip(encoded, seed, size):
    """ImageNet augmentation on JPEG bytes: decode only a random box (fused decode-and-crop), resize, flip."""
    box_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    begin, box_size = _random_box(tf.image.extract_jpeg_shape(encoded), box_seed)
    window = tf.stack([begin[0], begin[1], box_size[0], box_size[1]])
    crop = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    resized = _round_uint8(tf.image.resize(crop, size, method="bilinear"))
    return tf.image.stateless_random_flip_left_right(resized, seed=flip_seed)


def _decode_centre_crop(encoded, size):
    """ImageNet evaluation on JPEG bytes: decode only the centre crop `_resize_centre_crop` keeps, resize it.

    The crop is the window that resizing the shorter side to 256/224 of `size` and cutting
    `size` out of the middle would keep; it is decoded alone and resized to `size`.
    """
    shape = tf.image.extract_jpeg_shape(encoded)[:2]
    target = round(max(size) * IMAGENET_RESIZE_RATIO)
    scale = tf.cast(tf.reduce_min(shape), tf.float32) / target
    crop = tf.cast(tf.round(tf.constant(size, tf.float32) * scale), tf.int32)
    crop = tf.clip_by_value(crop, 1, shape)
    offset = (shape - crop) // 2
    window = tf.stack([offset[0], offset[1], crop[0], crop[1]])
    return _round_uint8(tf.image.resize(tf.image.decode_and_crop_jpeg(encoded, window, channels=3), size,
                                        method="bilinear"))
