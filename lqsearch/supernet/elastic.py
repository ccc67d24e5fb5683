"""Elastic layers: one layer holds the largest weights and runs a sub-configuration chosen at run time.

The active sub-configuration lives in non-trainable int32 variables
(`active_filters`, `active_groups`), so changing it between steps never
retraces a `tf.function`: the sliced kernels and the activations simply get
dynamic shapes. Input channels are never stored: every elastic layer reads them
from its input tensor (`tf.shape(x)[-1]`), so the width of one layer follows the
layer before it through pooling, `Add` and `Concatenate` layers.

- `ElasticConv2D` (float or larq-quantized): keeps a dense `(k, k, Cin, Cout)`
  kernel. It crops the first `cin` input and `active_filters` output channels,
  gathers the grouped kernel `(k, k, cin / g, cout)` from the block diagonal
  (Phan et al.'s weight sharing), quantizes THAT kernel (so magnitude-aware scales
  are means over the weights actually used, as in the static model), and runs
  a real grouped convolution.
- `ElasticBatchNormalization`: the first `c` channels of gamma, beta and the
  moving statistics; training updates only those channels. It runs the same
  fused op and moving-average update as Keras' BatchNormalization, so a
  sub-network computes what its static model computes in training mode too.
- `ElasticDense`: the first input features; after a `Flatten` it keeps the
  (position, channel) layout, i.e. the first `c` channels at every position.

`elastic_clone(model)` rebuilds a functional model with these layers in place
of `Conv2D` / `QuantConv2D` / `BatchNormalization` / `Dense` (layer names are
kept). Each elastic layer's `sub_weights(static_layer)` returns the weights a
static layer of the same name inherits, and `load_sub_weights(static_layer)`
writes them back (the inverse).
"""
from __future__ import annotations

import functools
import math
from typing import Dict, List, Mapping, Optional, Set

import larq as lq
import numpy as np
import tensorflow as tf

from lqsearch.spaces.layers import GroupedConv2D, QuantGroupedConv2D, grouped_convolution

__all__ = ["ElasticConv2D", "ElasticBatchNormalization", "ElasticDense", "elastic_clone", "grouped_kernel",
           "block_diagonal", "ELASTIC_LAYERS", "CONV_TYPES"]


def grouped_kernel(kernel: tf.Tensor, groups) -> tf.Tensor:
    """Gathers the grouped kernel from the block diagonal of a dense kernel.

    Output channel `o` belongs to group `j = o // (cout / groups)` and reads the
    input channels `j * cin / groups ... (j + 1) * cin / groups - 1`, TensorFlow's
    grouped-convolution layout.

    Arguments:
        kernel: a dense `(kh, kw, cin, cout)` kernel (already cropped to the active channels).
        groups: an int or int32 scalar tensor dividing `cin` and `cout`.

    Returns:
        The `(kh, kw, cin / groups, cout)` kernel of a grouped convolution.
    """
    shape = tf.shape(kernel)
    group_in = shape[2] // groups
    group_out = shape[3] // groups
    input_index = (tf.range(shape[3]) // group_out)[:, None] * group_in + tf.range(group_in)[None, :]
    by_output = tf.transpose(kernel, [3, 2, 0, 1])  # (cout, cin, kh, kw)
    gathered = tf.gather(by_output, input_index, batch_dims=1)  # (cout, cin / g, kh, kw)
    return tf.transpose(gathered, [2, 3, 1, 0])


def block_diagonal(grouped: np.ndarray, groups: int) -> np.ndarray:
    """The inverse of `grouped_kernel`: a dense `(kh, kw, cin, cout)` kernel, zero off the block diagonal.

    Arguments:
        grouped: a `(kh, kw, cin / groups, cout)` grouped kernel.
        groups: the group count.
    """
    height, width, group_in, cout = grouped.shape
    dense = np.zeros((height, width, group_in * groups, cout), dtype=grouped.dtype)
    rows = (np.arange(cout) // (cout // groups))[None, :] * group_in + np.arange(group_in)[:, None]
    dense[:, :, rows, np.arange(cout)[None, :]] = grouped
    return dense


#: Under a `tf.distribute` strategy the active configuration is per replica: a training step assigns it inside
#: `strategy.run` with no cross-replica traffic; `set_genome` (outside) writes every copy; read outside: replica 0's.
_PER_REPLICA_CONFIG = dict(synchronization=tf.VariableSynchronization.ON_READ,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
#: Moving statistics as Keras' BatchNormalization keeps them: per replica, their mean when read outside.
_PER_REPLICA_STATISTICS = dict(_PER_REPLICA_CONFIG, aggregation=tf.VariableAggregation.MEAN)


def _copy_quantizer(quantizer):
    """A fresh copy of a larq quantizer (layer instances are not shared between models)."""
    if quantizer is None:
        return None
    if isinstance(quantizer, tf.keras.layers.Layer):
        return type(quantizer).from_config(quantizer.get_config())
    return quantizer


def _fresh(initializer):
    """A new instance of a Keras initializer (an unseeded instance called twice repeats its values)."""
    return type(initializer).from_config(initializer.get_config())


def _weight_name(variable) -> str:
    """'conv2/kernel:0' -> 'kernel'."""
    return variable.name.split("/")[-1].split(":")[0]


class ElasticConv2D(tf.keras.layers.Layer):
    """A 2D convolution (float or binary) whose output channels and groups are set at run time.

    Arguments:
        max_in_channels: input channels of the largest configuration.
        max_filters: output channels of the largest configuration.
        kernel_size, strides, dilation_rate: pairs of ints, as in `Conv2D`.
        padding: "same" or "valid".
        use_bias: add a bias (its first channels are used).
        kernel_initializer, bias_initializer, kernel_constraint: as in `Conv2D`; the
            constraint applies element-wise to the whole dense kernel.
        input_quantizer, kernel_quantizer: larq quantizers (None for a float conv).
        groups: the initial (and, for a conv no gene controls, fixed) group count.
        activation: as in `Conv2D`.
        elastic_filters: False keeps all `max_filters` outputs (static output shape).
        elastic_groups: False keeps `groups` fixed (no block-diagonal gather when it is 1).
        **kwargs: `Layer` arguments (name, ...).
    """

    def __init__(self, *, max_in_channels: int, max_filters: int, kernel_size, strides=(1, 1),
                 dilation_rate=(1, 1), padding: str = "same", use_bias: bool = False,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_constraint=None,
                 input_quantizer=None, kernel_quantizer=None, groups: int = 1, activation=None,
                 elastic_filters: bool = True, elastic_groups: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.elastic_filters = bool(elastic_filters)
        self.elastic_groups = bool(elastic_groups)
        self.max_in_channels = int(max_in_channels)
        self.max_filters = int(max_filters)
        self.kernel_size = tuple(kernel_size)
        self.strides = tuple(strides)
        self.dilation_rate = tuple(dilation_rate)
        self.padding = padding.upper()
        self.use_bias = use_bias
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.bias_initializer = tf.keras.initializers.get(bias_initializer)
        self.kernel_constraint = tf.keras.constraints.get(kernel_constraint)
        self.input_quantizer = input_quantizer
        self.kernel_quantizer = kernel_quantizer
        self.initial_groups = int(groups)
        self.activation = tf.keras.activations.get(activation)

    @classmethod
    def from_layer(cls, layer: tf.keras.layers.Conv2D, *, elastic_filters: bool = True,
                   elastic_groups: bool = True) -> ElasticConv2D:
        """The elastic counterpart of a built `Conv2D` or larq `QuantConv2D` (same name)."""
        if layer.data_format != "channels_last" or getattr(layer, "pad_values", 0.0) != 0.0:
            raise TypeError(f"Layer {layer.name!r}: only channels_last convs with zero padding can be elastic.")
        return cls(
            max_in_channels=layer.input_shape[-1], max_filters=layer.filters, kernel_size=layer.kernel_size,
            strides=layer.strides, dilation_rate=layer.dilation_rate, padding=layer.padding,
            use_bias=layer.use_bias, kernel_initializer=_fresh(layer.kernel_initializer),
            bias_initializer=_fresh(layer.bias_initializer), kernel_constraint=layer.kernel_constraint,
            input_quantizer=_copy_quantizer(getattr(layer, "input_quantizer", None)),
            kernel_quantizer=_copy_quantizer(getattr(layer, "kernel_quantizer", None)),
            groups=layer.groups, activation=layer.activation, name=layer.name,
            elastic_filters=elastic_filters, elastic_groups=elastic_groups,
        )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            "kernel", shape=(*self.kernel_size, self.max_in_channels, self.max_filters),
            initializer=self.kernel_initializer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", shape=(self.max_filters,), initializer=self.bias_initializer)
        self.active_filters = self.add_weight(
            "active_filters", shape=(), dtype=tf.int32, trainable=False, **_PER_REPLICA_CONFIG,
            initializer=tf.keras.initializers.Constant(self.max_filters),
        )
        self.active_groups = self.add_weight(
            "active_groups", shape=(), dtype=tf.int32, trainable=False, **_PER_REPLICA_CONFIG,
            initializer=tf.keras.initializers.Constant(self.initial_groups),
        )
        super().build(input_shape)

    def active_kernel(self, in_channels, filters, groups) -> tf.Tensor:
        """The grouped, NOT yet quantized kernel `(kh, kw, in_channels / groups, filters)`."""
        return grouped_kernel(self.kernel[:, :, :in_channels, :filters], groups)

    @tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow; faster tracing
    def call(self, inputs, training=None):  # `training` is unused; do_not_convert hides the signature
        if self.input_quantizer is not None:
            inputs = self.input_quantizer(inputs)
        filters = self.active_filters if self.elastic_filters else self.max_filters
        kernel = self.kernel[:, :, : tf.shape(inputs)[-1], :filters]
        grouped = self.elastic_groups or self.initial_groups > 1
        if grouped:
            kernel = grouped_kernel(kernel, self.active_groups)
        if self.kernel_quantizer is not None:
            kernel = self.kernel_quantizer(kernel)
        outputs = grouped_convolution(inputs, kernel, strides=self.strides, padding=self.padding,
                                      dilations=self.dilation_rate, grouped=grouped)
        if not self.elastic_filters:
            outputs.set_shape(outputs.shape[:-1].concatenate([self.max_filters]))
        if self.bias is not None:
            outputs = tf.nn.bias_add(outputs, self.bias[:filters])
        return self.activation(outputs)

    def sub_weights(self, static_layer: tf.keras.layers.Conv2D) -> List[np.ndarray]:
        """The weights a static conv of the same name inherits (its `get_weights()` order)."""
        kernel = self.active_kernel(static_layer.input_shape[-1], static_layer.filters, static_layer.groups)
        values = {"kernel": kernel, "bias": None if self.bias is None else self.bias[: static_layer.filters]}
        return [np.asarray(values[_weight_name(w)]) for w in static_layer.weights]

    def load_sub_weights(self, static_layer: tf.keras.layers.Conv2D) -> None:
        """The inverse of `sub_weights`: writes a static conv's weights into the shared ones.

        The grouped kernel goes onto the block diagonal of the first channels; the
        cropped weights off the diagonal are set to zero, the others are kept.
        """
        values = {_weight_name(w): w.numpy() for w in static_layer.weights}
        cin, cout = static_layer.input_shape[-1], static_layer.filters
        kernel = self.kernel.numpy()
        kernel[:, :, :cin, :cout] = block_diagonal(values["kernel"], static_layer.groups)
        self.kernel.assign(kernel)
        if self.bias is not None and "bias" in values:
            bias = self.bias.numpy()
            bias[:cout] = values["bias"]
            self.bias.assign(bias)


class ElasticBatchNormalization(tf.keras.layers.Layer):
    """BatchNormalization over the last axis that uses the first `c` channels of its parameters.

    `c` is the channel count of the input. In training, the batch statistics of
    those channels update only their moving averages.

    Arguments:
        max_channels: channels of the largest configuration.
        momentum, epsilon, center, scale: as in `BatchNormalization`.
        **kwargs: `Layer` arguments (name, ...).
    """

    def __init__(self, *, max_channels: int, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.max_channels = int(max_channels)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale

    @classmethod
    def from_layer(cls, layer: tf.keras.layers.BatchNormalization) -> ElasticBatchNormalization:
        """The elastic counterpart of a built `BatchNormalization` (same name and settings)."""
        if list(layer.axis) != [len(layer.input_shape) - 1]:
            raise TypeError(f"Layer {layer.name!r}: only BatchNormalization over the last axis can be elastic.")
        return cls(max_channels=layer.input_shape[-1], momentum=layer.momentum, epsilon=layer.epsilon,
                   center=layer.center, scale=layer.scale, name=layer.name)

    def build(self, input_shape):
        shape = (self.max_channels,)
        self.gamma = self.add_weight("gamma", shape=shape, initializer="ones") if self.scale else None
        self.beta = self.add_weight("beta", shape=shape, initializer="zeros") if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape=shape, initializer="zeros", trainable=False,
                                           **_PER_REPLICA_STATISTICS)
        self.moving_variance = self.add_weight("moving_variance", shape=shape, initializer="ones", trainable=False,
                                               **_PER_REPLICA_STATISTICS)
        super().build(input_shape)

    def _parameters(self, channels):
        gamma = self.gamma[:channels] if self.gamma is not None else tf.ones([channels])
        beta = self.beta[:channels] if self.beta is not None else tf.zeros([channels])
        return gamma, beta

    @tf.autograph.experimental.do_not_convert  # training is a Python bool or a tensor (tf.cond)
    def call(self, inputs, training=None):
        if training is None:
            training = tf.keras.backend.learning_phase()
        channels = tf.shape(inputs)[-1]
        gamma, beta = self._parameters(channels)
        mean, variance = self.moving_mean[:channels], self.moving_variance[:channels]
        if isinstance(training, (bool, int)):
            return self._train(inputs, gamma, beta, mean, variance) if training else self._infer(
                inputs, gamma, beta, mean, variance)
        return tf.cond(tf.cast(training, tf.bool), lambda: self._train(inputs, gamma, beta, mean, variance),
                       lambda: self._infer(inputs, gamma, beta, mean, variance))

    def _infer(self, inputs, gamma, beta, mean, variance):
        if inputs.shape.rank == 4:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=mean, variance=variance, epsilon=self.epsilon, is_training=False
            )
            return outputs
        return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, self.epsilon)

    def _train(self, inputs, gamma, beta, mean, variance):
        """Batch statistics; the same fused op and running-average update as Keras' BatchNormalization."""
        if inputs.shape.rank != 4:
            batch_mean, batch_variance = tf.nn.moments(inputs, list(range(inputs.shape.rank - 1)))
            outputs = tf.nn.batch_normalization(inputs, batch_mean, batch_variance, beta, gamma, self.epsilon)
            self._store(self.moving_mean, mean * self.momentum + batch_mean * (1.0 - self.momentum))
            self._store(self.moving_variance, variance * self.momentum + batch_variance * (1.0 - self.momentum))
            return outputs
        # As Keras: the fused op averages the unbiased batch variance into the moving one.
        outputs, new_mean, new_variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, mean=mean, variance=variance, epsilon=self.epsilon,
            is_training=True, exponential_avg_factor=1.0 - self.momentum,
        )
        self._store(self.moving_mean, new_mean)
        self._store(self.moving_variance, new_variance)
        return outputs

    @staticmethod
    def _store(variable, head):
        """Writes `head` into the first channels of `variable`."""
        variable.assign(tf.concat([head, variable[tf.shape(head)[0]:]], axis=0))

    def sub_weights(self, static_layer: tf.keras.layers.BatchNormalization) -> List[np.ndarray]:
        """The first channels of each parameter, in the static layer's `get_weights()` order."""
        channels = static_layer.input_shape[-1]
        return [np.asarray(getattr(self, _weight_name(w))[:channels]) for w in static_layer.weights]

    def load_sub_weights(self, static_layer: tf.keras.layers.BatchNormalization) -> None:
        """The inverse of `sub_weights`: writes a static BatchNorm into the first channels."""
        for weight in static_layer.weights:
            variable = getattr(self, _weight_name(weight))
            value = variable.numpy()
            value[: weight.shape[0]] = weight.numpy()
            variable.assign(value)


class ElasticDense(tf.keras.layers.Layer):
    """A dense layer (float or larq-quantized) over the first input features.

    Arguments:
        max_in_features: input features of the largest configuration.
        units: output units (fixed).
        spatial_positions: H * W when the input is a flattened (H, W, C) map: the
            layer then uses the first C' channels at every position; 1 otherwise.
        use_bias, kernel_initializer, bias_initializer, kernel_constraint, activation:
            as in `Dense`.
        input_quantizer, kernel_quantizer: larq quantizers (None for a float layer).
        **kwargs: `Layer` arguments (name, ...).
    """

    def __init__(self, *, max_in_features: int, units: int, spatial_positions: int = 1, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_constraint=None,
                 activation=None, input_quantizer=None, kernel_quantizer=None, **kwargs):
        super().__init__(**kwargs)
        if max_in_features % spatial_positions:
            raise ValueError(f"{max_in_features} input features are not {spatial_positions} positions x channels.")
        self.max_in_features = int(max_in_features)
        self.units = int(units)
        self.spatial_positions = int(spatial_positions)
        self.use_bias = use_bias
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.bias_initializer = tf.keras.initializers.get(bias_initializer)
        self.kernel_constraint = tf.keras.constraints.get(kernel_constraint)
        self.activation = tf.keras.activations.get(activation)
        self.input_quantizer = input_quantizer
        self.kernel_quantizer = kernel_quantizer

    @classmethod
    def from_layer(cls, layer: tf.keras.layers.Dense) -> ElasticDense:
        """The elastic counterpart of a built `Dense` or larq `QuantDense` (same name).

        When the layer reads a `Flatten` of an (H, W, C) map, the (position, channel)
        layout is kept so that narrower maps use their first channels everywhere.
        """
        source = layer.inbound_nodes[0].inbound_layers
        positions = 1
        if isinstance(source, tf.keras.layers.Flatten):
            positions = int(math.prod(source.input_shape[1:-1]))
        return cls(
            max_in_features=layer.kernel.shape[0], units=layer.units, spatial_positions=positions,
            use_bias=layer.use_bias, kernel_initializer=_fresh(layer.kernel_initializer),
            bias_initializer=_fresh(layer.bias_initializer), kernel_constraint=layer.kernel_constraint,
            activation=layer.activation, name=layer.name,
            input_quantizer=_copy_quantizer(getattr(layer, "input_quantizer", None)),
            kernel_quantizer=_copy_quantizer(getattr(layer, "kernel_quantizer", None)),
        )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            "kernel", shape=(self.max_in_features, self.units),
            initializer=self.kernel_initializer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", shape=(self.units,), initializer=self.bias_initializer)
        super().build(input_shape)

    def active_kernel(self, in_features) -> tf.Tensor:
        """The `(in_features, units)` kernel of a narrower input, NOT yet quantized."""
        if self.spatial_positions == 1:
            return self.kernel[:in_features]
        channels = in_features // self.spatial_positions
        by_position = tf.reshape(self.kernel, (self.spatial_positions, -1, self.units))[:, :channels, :]
        return tf.reshape(by_position, (-1, self.units))

    @tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow; faster tracing
    def call(self, inputs, training=None):  # `training` is unused; do_not_convert hides the signature
        if self.input_quantizer is not None:
            inputs = self.input_quantizer(inputs)
        kernel = self.active_kernel(tf.shape(inputs)[-1])
        if self.kernel_quantizer is not None:
            kernel = self.kernel_quantizer(kernel)
        outputs = tf.matmul(inputs, kernel)
        if self.bias is not None:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs)

    def sub_weights(self, static_layer: tf.keras.layers.Dense) -> List[np.ndarray]:
        """The inherited kernel (and bias), in the static layer's `get_weights()` order."""
        values = {"kernel": self.active_kernel(static_layer.kernel.shape[0]), "bias": self.bias}
        return [np.asarray(values[_weight_name(w)]) for w in static_layer.weights]

    def load_sub_weights(self, static_layer: tf.keras.layers.Dense) -> None:
        """The inverse of `sub_weights`: writes a static dense layer into the first input features."""
        values = {_weight_name(w): w.numpy() for w in static_layer.weights}
        kernel = self.kernel.numpy().reshape(self.spatial_positions, -1, self.units)
        channels = values["kernel"].shape[0] // self.spatial_positions
        kernel[:, :channels, :] = values["kernel"].reshape(self.spatial_positions, channels, self.units)
        self.kernel.assign(kernel.reshape(self.max_in_features, self.units))
        if self.bias is not None and "bias" in values:
            self.bias.assign(values["bias"])


ELASTIC_LAYERS = (ElasticConv2D, ElasticBatchNormalization, ElasticDense)
#: Static conv classes (exact types) that become `ElasticConv2D`: Keras' and larq's, and the
#: spaces' natively grouped versions of them (same weights and outputs).
CONV_TYPES = (tf.keras.layers.Conv2D, lq.layers.QuantConv2D, GroupedConv2D, QuantGroupedConv2D)

#: Static layer classes with an elastic counterpart, by exact type (subclasses such as
#: DepthwiseConv2D compute something else and are refused).
_ELASTIC_OF = {
    tf.keras.layers.Conv2D: ElasticConv2D,
    lq.layers.QuantConv2D: ElasticConv2D,
    GroupedConv2D: ElasticConv2D,
    QuantGroupedConv2D: ElasticConv2D,
    tf.keras.layers.BatchNormalization: ElasticBatchNormalization,
    tf.keras.layers.Dense: ElasticDense,
    lq.layers.QuantDense: ElasticDense,
}


def _elastic_or_copy(layer: tf.keras.layers.Layer, widths: Optional[Set[str]],
                     groups: Optional[Set[str]]) -> tf.keras.layers.Layer:
    """`clone_model`'s clone function: elastic counterparts for weighted layers, fresh copies otherwise.

    Raises:
        TypeError: for a layer with weights and no elastic counterpart.
    """
    elastic = _ELASTIC_OF.get(type(layer))
    if elastic is ElasticConv2D:
        return elastic.from_layer(layer, elastic_filters=widths is None or layer.name in widths,
                                  elastic_groups=groups is None or layer.name in groups)
    if elastic is not None:
        return elastic.from_layer(layer)
    if layer.weights:
        raise TypeError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has weights but no elastic counterpart; "
            f"supported: {', '.join(sorted(c.__name__ for c in _ELASTIC_OF))}."
        )
    return type(layer).from_config(layer.get_config())


def elastic_clone(model: tf.keras.Model, *, widths: Optional[Set[str]] = None, groups: Optional[Set[str]] = None,
                  name: Optional[str] = None) -> tf.keras.Model:
    """Rebuilds a functional model with elastic layers in place of its convs, BatchNorms and denses.

    Arguments:
        model: a built functional model (typically the costliest genome of a space).
        widths: names of the convs whose output channels change at run time (None: all).
        groups: names of the convs whose group count changes at run time (None: all).
        name: the new model's name (default: `model.name + "_supernet"`).

    Returns:
        A functional model with the same graph and layer names, freshly initialized.

    Raises:
        TypeError: if a layer with weights has no elastic counterpart.
    """
    clone_function = functools.partial(_elastic_or_copy, widths=widths, groups=groups)
    clone = tf.keras.models.clone_model(model, clone_function=clone_function)
    return tf.keras.Model(clone.inputs, clone.outputs, name=name or f"{model.name}_supernet")


def elastic_layers(model: tf.keras.Model) -> Dict[str, tf.keras.layers.Layer]:
    """{layer name: elastic layer} of a model built by `elastic_clone`."""
    return {layer.name: layer for layer in model.layers if isinstance(layer, ELASTIC_LAYERS)}


def set_active(layers: Mapping[str, ElasticConv2D], config: Mapping[str, tuple]) -> None:
    """Assigns `{conv name: (filters, groups)}` to the elastic convs' run-time variables."""
    for name, (filters, groups) in config.items():
        layers[name].active_filters.assign(filters)
        layers[name].active_groups.assign(groups)
