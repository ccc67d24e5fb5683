"""Pixels to model inputs: uint8 images become float32 in [0, 1] on the device, by one exact definition.

The training passes (`lqsearch.data.Dataset.seeded`) yield uint8 images: a quarter of the bytes of
float32 through the host and onto the device, and no float batch is written on the host
(`bench/bench_imagenet_path.py` part 2 times both at 224 px). `lqsearch.training.fit` and
`evaluate` and the supernet's training step convert them with `images_to_float` inside their
compiled steps (the one-shot evaluator's stored uint8 recalibration batches are converted one at a
time as they are used); the models themselves still take float images in [0, 1], so saved,
published and deployed models do not change.

`images_to_float` is a lookup of the 256 levels `k / 255` (float32, correctly rounded): the same
bits in a `tf.data` map, eagerly and inside a traced step. (`tf.cast(x, tf.float32) / 255` does
not give that: in a traced step Grappler turns the division by a constant into a multiplication
by its reciprocal, one ulp off for some levels, and a training would drift from the same training
fed float batches.)
"""
from typing import Optional

import numpy as np
import tensorflow as tf

__all__ = ["PIXEL_LEVELS", "images_to_float", "exact_uint8", "is_pixels", "float_input"]

#: The float32 value of each uint8 pixel level k: k / 255, correctly rounded.
PIXEL_LEVELS = np.arange(256, dtype=np.float32) / np.float32(255.0)


def images_to_float(images):
    """uint8 pixels 0..255 as the models take them: float32 in [0, 1]. The one definition of that conversion.

    The same bits wherever it runs (a `tf.data` map, eagerly, a traced training step), so a
    training fed uint8 batches equals one fed the float batches, bit for bit.
    """
    return tf.gather(tf.constant(PIXEL_LEVELS), tf.cast(images, tf.int32))


def exact_uint8(images) -> Optional[np.ndarray]:
    """`images` (float32 in [0, 1]) as uint8 pixels if `images_to_float` gives them back bit for bit, else None.

    True of every float batch of a uint8 source; a float source, or a value out of [0, 1] or
    between two pixel levels, gives None (keep the floats then).
    """
    images = np.asarray(images)
    if images.dtype != np.float32:
        return None
    with np.errstate(invalid="ignore"):  # NaN: no pixel gives it back, so None below
        pixels = np.clip(np.rint(images * np.float32(255.0)), 0, 255).astype(np.uint8)
    return pixels if np.array_equal(PIXEL_LEVELS[pixels].view(np.uint32), images.view(np.uint32)) else None


def is_pixels(pipeline) -> bool:
    """Whether a batched (images, labels) `tf.data.Dataset` yields uint8 images (to convert on the device)."""
    return pipeline.element_spec[0].dtype == tf.uint8


def float_input(model: tf.keras.Model) -> tf.keras.Model:
    """A model that takes uint8 pixels, converts them (`images_to_float`) and runs `model` on them.

    It shares `model`'s layers and weights (training it trains `model`) and has no weights of its
    own; it is built in `model`'s distribution strategy, so Keras runs the conversion inside the
    compiled step, on the device.
    """
    with model.distribute_strategy.scope():
        pixels = tf.keras.Input(model.input_shape[1:], dtype=tf.uint8, name="pixels")
        images = tf.keras.layers.Lambda(images_to_float, name="images_to_float")(pixels)
        return tf.keras.Model(pixels, model(images), name=model.name)
