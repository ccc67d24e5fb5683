"""Layer helpers shared by the search spaces: binary convs, float convs, BatchNorm, pooling, merges, heads.

Each helper takes either a Keras tensor, and adds its layer to the model being
built, or a `FeatureMap`, a shape with no values, and then records the layer's
analytic cost (`lqsearch.cost`) in the map's tally and returns the output shape.
A space whose `_build` uses only these helpers is traced by the same code for
`build` and for `cost`, so the two cannot describe different networks.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
from typing import Dict, Optional, Sequence, Tuple

import larq as lq
import tensorflow as tf

from lqsearch import cost
from lqsearch.spaces.layers import GroupedConv2D, QuantGroupedConv2D

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


@dataclasses.dataclass
class Trace:
    """What tracing a space's `_build` on shapes records.

    Attributes:
        tally: the `CostTally` of the layers with weights.
        convs: {conv name: (filters, groups)}, every conv, float or binary.
    """

    tally: cost.CostTally = dataclasses.field(default_factory=cost.CostTally)
    convs: Dict[str, Tuple[int, int]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    """The shape of a feature map (or of a flat feature vector, `height = width = None`), with no values.

    Attributes:
        height, width, channels: its size.
        trace: the `Trace` the layers of the traced model record themselves in.
    """

    height: Optional[int]
    width: Optional[int]
    channels: int
    trace: Trace = dataclasses.field(repr=False, compare=False)

    @property
    def tally(self) -> cost.CostTally:
        """The trace's cost tally."""
        return self.trace.tally

    @property
    def shape(self) -> tuple:
        """As a Keras tensor's shape: (None, H, W, C), or (None, C) when flat."""
        if self.height is None:
            return (None, self.channels)
        return (None, self.height, self.width, self.channels)

    def resized(self, height: int, width: int, channels: int) -> FeatureMap:
        """A map of the same tally with another size.

        Raises:
            ValueError: if a size is not positive (the input is too small for the layers).
        """
        if min(height, width, channels) < 1:
            raise ValueError(
                f"A layer's output would be {height}x{width}x{channels}: the input "
                f"({self.height}x{self.width}) is too small for this network."
            )
        return FeatureMap(height, width, channels, self.trace)


def input_map(input_shape: Sequence[int]) -> FeatureMap:
    """The `FeatureMap` of an HxWxC input, with a new, empty trace."""
    height, width, channels = (int(d) for d in input_shape)
    return FeatureMap(height, width, channels, Trace())


def _output_size(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def _strided(x: FeatureMap, window: int, stride: int, padding: str, channels: int) -> FeatureMap:
    return x.resized(_output_size(x.height, window, stride, padding), _output_size(x.width, window, stride, padding),
                     channels)


@functools.cache
def _precisions(preset_type: type) -> tuple:
    """(input bits, kernel bits) of a preset's quantizers, as larq reads them (None: no quantizer)."""
    kwargs = preset_type().layer_kwargs()
    return (getattr(kwargs.get("input_quantizer"), "precision", None),
            getattr(kwargs.get("kernel_quantizer"), "precision", None))


def binary_conv(x, filters: int, kernel_size: int, *, preset, name: str, strides: int = 1, groups: int = 1):
    """A `QuantConv2D` with the preset's quantizers, 'same' padding and no bias.

    Grouped (`groups > 1`), it is a `QuantGroupedConv2D`: the same layer, run natively on the CPU.
    """
    if isinstance(x, FeatureMap):
        input_bits, kernel_bits = _precisions(type(preset))
        return _conv_map(x, filters, kernel_size, strides, groups, name, input_bits, kernel_bits)
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
    if isinstance(x, FeatureMap):
        return _conv_map(x, filters, kernel_size, strides, groups, name, None, None)
    layer_class = GroupedConv2D if groups > 1 else tf.keras.layers.Conv2D
    return layer_class(
        **_conv_arguments(filters, kernel_size, strides, groups, name), kernel_initializer="he_normal"
    )(x)


def _conv_map(x: FeatureMap, filters, kernel_size, strides, groups, name, input_bits, kernel_bits) -> FeatureMap:
    if x.channels % groups or filters % groups:
        raise ValueError(f"Layer {name!r}: {groups} groups do not divide {x.channels} inputs and {filters} outputs.")
    y = _strided(x, kernel_size, strides, "same", filters)
    x.trace.convs[name] = (filters, groups)
    x.tally.add(name, cost.conv_cost(
        output_pixels=y.height * y.width, kernel_size=(kernel_size, kernel_size), in_channels=x.channels,
        filters=filters, groups=groups, input_bits=input_bits, kernel_bits=kernel_bits,
    ))
    return y


def _conv_arguments(filters: int, kernel_size: int, strides: int, groups: int, name: str) -> dict:
    """Arguments shared by every conv of the spaces: 'same' padding, no bias (BN follows)."""
    return dict(filters=filters, kernel_size=kernel_size, strides=strides, padding="same", groups=groups,
                use_bias=False, name=name)


def batch_norm(x, *, name: str):
    """BatchNormalization with the momentum and epsilon used across lqsearch spaces."""
    if isinstance(x, FeatureMap):
        x.tally.add(name, cost.batch_norm_cost(x.channels))
        return x
    return tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def max_pool(x, pool_size: int, *, name: str, strides: Optional[int] = None, padding: str = "valid"):
    """`MaxPool2D` (strides default to the pool size)."""
    strides = strides or pool_size
    if isinstance(x, FeatureMap):
        return _strided(x, pool_size, strides, padding, x.channels)
    return tf.keras.layers.MaxPool2D(pool_size, strides=strides, padding=padding, name=name)(x)


def average_pool(x, pool_size: int, *, name: str, strides: Optional[int] = None, padding: str = "valid"):
    """`AveragePooling2D` (strides default to the pool size)."""
    strides = strides or pool_size
    if isinstance(x, FeatureMap):
        return _strided(x, pool_size, strides, padding, x.channels)
    return tf.keras.layers.AveragePooling2D(pool_size, strides=strides, padding=padding, name=name)(x)


def add(inputs: Sequence, *, name: str):
    """Element-wise sum (`Add`) of tensors of one shape."""
    if isinstance(inputs[0], FeatureMap):
        if len({i.shape for i in inputs}) != 1:
            raise ValueError(f"Layer {name!r} adds maps of different shapes: {[i.shape for i in inputs]}.")
        return inputs[0]
    return tf.keras.layers.Add(name=name)(list(inputs))


def concatenate(inputs: Sequence, *, name: str):
    """Channel concatenation (`Concatenate`) of maps of one height and width."""
    if isinstance(inputs[0], FeatureMap):
        if len({i.shape[:-1] for i in inputs}) != 1:
            raise ValueError(f"Layer {name!r} concatenates maps of different sizes: {[i.shape for i in inputs]}.")
        return inputs[0].resized(inputs[0].height, inputs[0].width, sum(i.channels for i in inputs))
    return tf.keras.layers.Concatenate(name=name)(list(inputs))


def classifier(x, num_classes: int, *, flatten: bool = False):
    """Full-precision head: global average pooling (or flatten) and a dense layer to logits."""
    if isinstance(x, FeatureMap):
        features = x.height * x.width * x.channels if flatten else x.channels
        x.tally.add("fc", cost.dense_cost(in_features=features, units=num_classes))
        return FeatureMap(None, None, num_classes, x.trace)
    if flatten:
        x = tf.keras.layers.Flatten(name="flatten")(x)
    else:
        x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return tf.keras.layers.Dense(num_classes, name="fc")(x)
