"""Grouped convolutions that run natively on the CPU, in training and in evaluation.

Keras 2.15 runs every `Conv2D(groups > 1)` through an XLA-compiled op
(`Conv._jit_compiled_convolution_op`), because TensorFlow's plain CPU kernels
have no gradient for grouped convolutions. On a CPU that costs a 10 s compile
on the first step and a training step 6x (groups=4) to 15x (groups=16) slower
than the same net at groups=1. With oneDNN on (`TF_ENABLE_ONEDNN_OPTS=1`, which
`import lqsearch` sets before TensorFlow is imported), TensorFlow's own grouped
`Conv2D` op and its two gradients run natively and fast.

`GroupedConv2D` (float) and `QuantGroupedConv2D` (larq, binary) are Keras'
`Conv2D` and larq's `QuantConv2D` with that one op run as Keras' plain
`convolution_op` (a `tf.nn.convolution`), no XLA. Kernel layout
`(kh, kw, Cin / groups, Cout)`, weights, names, configs and quantization are
unchanged, so saved `.h5` weights, weight inheritance, supernet extraction and
LCE export see the same layers (both classes are registered for Keras
serialization as `lqsearch>GroupedConv2D` and `lqsearch>QuantGroupedConv2D`).
Spaces use them only where `groups > 1`.

When TensorFlow was imported before lqsearch with oneDNN off, the native
gradient does not exist. `native_grouped_gradients()` detects that once per
process with a tiny probe; both layers, and `grouped_convolution` (the op of the
supernet's elastic convs), then fall back to an XLA-compiled op as Keras does
(correct, slower), and a warning says how to get the fast path.
"""
from __future__ import annotations

import functools
import logging
from typing import Optional

import larq as lq
import tensorflow as tf

__all__ = ["GroupedConv2D", "QuantGroupedConv2D", "grouped_convolution", "native_grouped_gradients", "GROUPED_TYPES"]

_log = logging.getLogger(__name__)
_FALLBACK_WARNING = (
    "TensorFlow cannot compute gradients of grouped convolutions natively on this CPU: oneDNN is off "
    "(TF_ENABLE_ONEDNN_OPTS was 0, or TensorFlow was imported before lqsearch could set it). Grouped convs fall "
    "back to Keras' XLA-compiled op: correct, but several times slower. Set TF_ENABLE_ONEDNN_OPTS=1 before "
    "TensorFlow is imported (or import lqsearch first) for the native path."
)


@functools.cache
def native_grouped_gradients() -> bool:
    """True when TensorFlow computes grouped-convolution gradients natively here (checked once).

    On the CPU that needs oneDNN, which TensorFlow turns on when it is first imported
    (`TF_ENABLE_ONEDNN_OPTS`); reading the variable later tells nothing, so this runs the
    two gradient ops of a tiny grouped convolution eagerly and reports whether they ran.
    A warning says how to get the native path when they do not.

    Returns:
        True if the native op has gradients; False if grouped convs must use the XLA op.
    """
    with tf.init_scope():  # eager, even when called while a tf.function traces (it pauses tapes, so
        # the two gradient ops are called directly)
        images, kernel, upstream = tf.ones((1, 3, 3, 2)), tf.ones((1, 1, 1, 2)), tf.ones((1, 3, 3, 2))
        try:
            tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(images), filter=kernel, out_backprop=upstream,
                                           strides=[1, 1, 1, 1], padding="VALID")
            tf.raw_ops.Conv2DBackpropFilter(input=images, filter_sizes=tf.shape(kernel), out_backprop=upstream,
                                            strides=[1, 1, 1, 1], padding="VALID")
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            _log.warning(_FALLBACK_WARNING)
            return False
    return True


@tf.function(jit_compile=True)
def _xla_convolution(inputs, kernel, strides, padding, dilations):
    return tf.nn.convolution(inputs, kernel, strides=strides, padding=padding, dilations=dilations)


def grouped_convolution(inputs, kernel, *, strides, padding: str, dilations, grouped: Optional[bool] = None,
                        name=None) -> tf.Tensor:
    """`tf.nn.convolution` for any group count (`groups = Cin / kernel.shape[2]`), run natively.

    Falls back to an XLA-compiled convolution (Keras' own path) only for a grouped
    kernel when `native_grouped_gradients()` is False.

    Arguments:
        inputs: NHWC images.
        kernel: `(kh, kw, Cin / groups, Cout)`.
        strides, dilations: lists of two ints.
        padding: "SAME" or "VALID".
        grouped: whether the convolution may be grouped; None: unless the static shapes say it is not.
        name: the op name.

    Returns:
        The NHWC outputs.
    """
    if grouped is None:
        grouped = kernel.shape[2] is None or inputs.shape[-1] is None or kernel.shape[2] != inputs.shape[-1]
    if grouped and not native_grouped_gradients():
        return _xla_convolution(inputs, kernel, list(strides), padding, list(dilations))
    return tf.nn.convolution(inputs, kernel, strides=list(strides), padding=padding, dilations=list(dilations),
                             name=name)


class _NativeGroups:
    """Runs Keras' grouped convolution op (`Conv._jit_compiled_convolution_op`, the one op `Conv.call`
    calls for `groups > 1`) as the plain `convolution_op`, without XLA; the rest of `call` is Keras'."""

    def _jit_compiled_convolution_op(self, inputs, kernel):
        if native_grouped_gradients():
            return self.convolution_op(inputs, kernel)
        return super()._jit_compiled_convolution_op(inputs, kernel)


@tf.keras.utils.register_keras_serializable(package="lqsearch")
class GroupedConv2D(_NativeGroups, tf.keras.layers.Conv2D):
    """Keras' `Conv2D` whose grouped convolution runs natively on the CPU (no XLA).

    Same arguments, weights and outputs as `tf.keras.layers.Conv2D`; see the module docstring.
    """


@tf.keras.utils.register_keras_serializable(package="lqsearch")
class QuantGroupedConv2D(_NativeGroups, lq.layers.QuantConv2D):
    """larq's `QuantConv2D` whose grouped convolution runs natively on the CPU (no XLA).

    Same arguments, weights, quantizers and outputs as `larq.layers.QuantConv2D`; see
    the module docstring.
    """


#: The native grouped conv classes, with the Keras / larq class each one stands in for.
GROUPED_TYPES = {GroupedConv2D: tf.keras.layers.Conv2D, QuantGroupedConv2D: lq.layers.QuantConv2D}
