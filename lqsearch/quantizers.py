"""Named quantizer presets: one name -> the larq keyword arguments of a binary layer.

A preset says how a binary convolution quantizes its input activations and its
kernel. Every preset is a small class registered under its name with
`@register_preset`, and `get(name)` returns fresh larq quantizer *instances*
(never activation strings: `Activation("ste_sign")` fails on TF 2.15), so each
layer owns its own quantizer objects and the model serializes cleanly.

| preset    | activations                      | weights                              | paper            |
|-----------|----------------------------------|--------------------------------------|------------------|
| `dorefa`  | round(clip(x, 0, 1))             | sign(w) * mean(abs(w)), no clip       | Shen et al. eq. 1   |
| `bireal`  | approx_sign                      | magnitude_aware_sign + weight_clip    | Phan et al., Bi-Real |
| `ste`     | ste_sign                         | ste_sign + weight_clip                | BinaryNet        |
| `float`   | ReLU (32-bit)                    | none (32-bit)                         | the float twin   |

`float` is the full-precision twin of the same architecture, used for
reference FLOPs and latency comparisons.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import larq as lq
import tensorflow as tf

from lqsearch._registry import Registry

__all__ = [
    "QuantizerPreset",
    "get",
    "list_presets",
    "register_preset",
    "MagnitudeAwareSignUnclipped",
    "FloatReLU",
    "LCE_GROUP_CHANNELS",
]

_PRESETS = Registry("quantizer preset", "presets")

#: LCE runs a grouped binary conv as binary only when Cin / groups is a multiple of this.
LCE_GROUP_CHANNELS = 32


@lq.utils.register_keras_custom_object
class MagnitudeAwareSignUnclipped(lq.quantizers.Quantizer):
    """sign(w) * mean(|w|) over the whole kernel, with an identity pseudo-gradient.

    DoReFa-Net's 1-bit weights (Shen et al., eq. 1), as larq-zoo's
    `dorefanet.magnitude_aware_sign_unclipped`, but a serializable class so
    models survive an `.h5` save and load.
    """

    precision = 1

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):  # `training` is unused; do_not_convert hides the signature
        scale = tf.stop_gradient(tf.reduce_mean(tf.abs(inputs)))

        @tf.custom_gradient
        def _scaled_sign(x):
            return lq.math.sign(x) * scale, lambda dy: dy

        return _scaled_sign(inputs)


@lq.utils.register_keras_custom_object
class FloatReLU(lq.quantizers.Quantizer):
    """ReLU in the input-quantizer slot of the float twin: 32-bit activations."""

    precision = 32

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs, training=None):  # `training` is unused; do_not_convert hides the signature
        return tf.nn.relu(inputs)


def register_preset(name: str) -> Callable[[type], type]:
    """Class decorator that registers a `QuantizerPreset` subclass under `name`."""
    return _PRESETS.register(name)


class QuantizerPreset:
    """Base class: a preset builds the quantizer keywords of one binary layer."""

    name: str = ""
    #: True when the activations are {-1, +1}, i.e. LCE can run them as binary ops.
    lce_binary: bool = True
    #: True when layers built with this preset count as binary (1-bit MACs).
    binary: bool = True

    def layer_kwargs(self) -> Dict[str, Any]:
        """Returns fresh `input_quantizer`, `kernel_quantizer`, `kernel_constraint` keywords."""
        raise NotImplementedError


@register_preset("dorefa")
class DoReFaPreset(QuantizerPreset):
    """Shen et al., eq. 1: activations round(clip(x, 0, 1)); weights sign(w) * E|w| per layer.

    The {0, 1} activations are not sign activations, so LCE cannot run them as
    binary operations (`lce_binary = False`).
    """

    lce_binary = False

    def layer_kwargs(self) -> Dict[str, Any]:
        return {
            "input_quantizer": lq.quantizers.DoReFa(k_bit=1, mode="activations"),
            "kernel_quantizer": MagnitudeAwareSignUnclipped(),
            "kernel_constraint": None,
        }


@register_preset("bireal")
class BiRealPreset(QuantizerPreset):
    """Phan et al. / Bi-Real Net: approx_sign activations, magnitude-aware sign weights, clipped."""

    def layer_kwargs(self) -> Dict[str, Any]:
        return {
            "input_quantizer": lq.quantizers.ApproxSign(),
            "kernel_quantizer": lq.quantizers.MagnitudeAwareSign(),
            "kernel_constraint": lq.constraints.WeightClip(),
        }


@register_preset("ste")
class SteSignPreset(QuantizerPreset):
    """BinaryNet style: ste_sign for activations and weights, weights clipped to [-1, 1]."""

    def layer_kwargs(self) -> Dict[str, Any]:
        return {
            "input_quantizer": lq.quantizers.SteSign(),
            "kernel_quantizer": lq.quantizers.SteSign(),
            "kernel_constraint": lq.constraints.WeightClip(),
        }


@register_preset("float")
class FloatPreset(QuantizerPreset):
    """The full-precision twin: ReLU activations and float weights, same layers and names."""

    binary = False
    lce_binary = False

    def layer_kwargs(self) -> Dict[str, Any]:
        return {"input_quantizer": FloatReLU(), "kernel_quantizer": None, "kernel_constraint": None}


def list_presets() -> list:
    """Returns the registered preset names, sorted."""
    return _PRESETS.names()


def get(name: str | QuantizerPreset) -> QuantizerPreset:
    """Returns the preset registered as `name` (a preset instance is passed through).

    Raises:
        ValueError: if `name` is not registered; the message lists the valid names.
    """
    if isinstance(name, QuantizerPreset):
        return name
    return _PRESETS.lookup(name)()
