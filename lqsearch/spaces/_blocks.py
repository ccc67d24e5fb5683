"""Layer helpers shared by the search spaces: binary convs, float convs, BatchNorm, heads."""
from __future__ import annotations

import contextlib
import logging

import larq as lq
import tensorflow as tf

from lqsearch.spaces.layers import GroupedConv2D, QuantGroupedConv2D

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def binary_conv(x, filters: int, kernel_size: int, *, preset, name: str, strides: int = 1, groups: int = 1):
    """A `QuantConv2D` with the preset's quantizers, 'same' padding and no bias.

    Grouped (`groups > 1`), it is a `QuantGroupedConv2D`: the same layer, run natively on the CPU.
    """
    kwargs = preset.layer_kwargs()
    quiet = kwargs.get("kernel_constraint") is None and kwargs.get("kernel_quantizer") is not None
    with _without_starved_weights_warning() if quiet else contextlib.nullcontext():
        layer_class = QuantGroupedConv2D if groups > 1 else lq.layers.QuantConv2D
        layer = layer_class(
            **_conv_arguments(filters, kernel_size, strides, groups, name), kernel_initializer="glorot_normal", **kwargs
        )
    return layer(x)


class _DropStarvedWeightsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "starved weights" not in record.getMessage()


@contextlib.contextmanager
def _without_starved_weights_warning():
    """Silences larq's 'no kernel_constraint' warning for presets that skip the clip on purpose
    (Shen et al.'s DoReFa weights are unclipped)."""
    logger = logging.getLogger("larq.layers_base")
    log_filter = _DropStarvedWeightsWarning()
    logger.addFilter(log_filter)
    try:
        yield
    finally:
        logger.removeFilter(log_filter)


def float_conv(x, filters: int, kernel_size: int, *, name: str, strides: int = 1, groups: int = 1):
    """A full-precision `Conv2D` with 'same' padding and no bias (first layers, FP shortcuts).

    Grouped (`groups > 1`), it is a `GroupedConv2D`: the same layer, run natively on the CPU.
    """
    layer_class = GroupedConv2D if groups > 1 else tf.keras.layers.Conv2D
    return layer_class(
        **_conv_arguments(filters, kernel_size, strides, groups, name), kernel_initializer="he_normal"
    )(x)


def _conv_arguments(filters: int, kernel_size: int, strides: int, groups: int, name: str) -> dict:
    """Arguments shared by every conv of the spaces: 'same' padding, no bias (BN follows)."""
    return dict(filters=filters, kernel_size=kernel_size, strides=strides, padding="same", groups=groups, use_bias=False, name=name)


def batch_norm(x, *, name: str):
    """BatchNormalization with the momentum and epsilon used across lqsearch spaces."""
    return tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def classifier(x, num_classes: int, *, flatten: bool = False):
    """Full-precision head: global average pooling (or flatten) and a dense layer to logits."""
    if flatten:
        x = tf.keras.layers.Flatten(name="flatten")(x)
    else:
        x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return tf.keras.layers.Dense(num_classes, name="fc")(x)
