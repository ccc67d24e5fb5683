"""Binary-aware cost of any Keras model, from larq's `ModelProfile`.

`FLOPs = binary_MACs / 64 + full_precision_MACs`, as in Bi-Real Net and both
papers (Shen et al. 2019, Phan et al. 2020). A MAC counts as binary when both its input and its kernel are
1-bit (a larq `QuantConv2D`/`QuantDense` with 1-bit quantizers); every other
MAC, including 2..16-bit ones, is counted at full precision (conservative).

larq reads a quantizer's `precision` attribute. A kernel quantizer function
without one crashes the profile; decorate it with `@larq.utils.set_precision(1)`.
A quantizer applied as a separate activation layer is invisible to the
profile, so keep quantizers inside Quant layers.

The analytic cost (`conv_cost`, `dense_cost`, `batch_norm_cost`, summed by a
`CostTally`) counts exactly what `profile` counts, layer by layer, without
building a model: the search spaces trace their architecture through it
(`SearchSpace.cost`), and `CostCache` uses it, so a search never builds a model
to cost a candidate.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Sequence

import larq as lq
import tensorflow as tf

__all__ = ["Cost", "profile", "CostCache", "CostTally", "conv_cost", "dense_cost", "batch_norm_cost"]

BINARY_MAC_FLOPS = 1 / 64
#: larq's bit width of a weight or activation without a quantizer.
FULL_PRECISION_BITS = 32


@dataclass(frozen=True)
class Cost:
    """The cost of one model.

    Attributes:
        binary_macs: 1-bit multiply-accumulates.
        fp_macs: all other multiply-accumulates.
        flops: `binary_macs / 64 + fp_macs`.
        memory_bits: weight memory in bits (1 per binary weight, 32 per float one).
        params: number of weights.
    """

    binary_macs: int
    fp_macs: int
    flops: float
    memory_bits: int
    params: int

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_counts(cls, *, binary_macs: int, fp_macs: int, memory_bits: int, params: int) -> Cost:
        """The `Cost` of integer counts, with `flops` computed as `profile` computes it."""
        return cls(binary_macs=int(binary_macs), fp_macs=int(fp_macs),
                   flops=float(binary_macs * BINARY_MAC_FLOPS + fp_macs), memory_bits=int(memory_bits),
                   params=int(params))


def conv_cost(*, output_pixels: int, kernel_size: Sequence[int], in_channels: int, filters: int, groups: int = 1,
              input_bits: Optional[int] = None, kernel_bits: Optional[int] = None, use_bias: bool = False) -> Cost:
    """The cost of one 2D convolution, as larq's `ModelProfile` counts it.

    A MAC is binary when both the input and the kernel are 1-bit (larq's precision of
    a MAC is the larger of the two); the kernel's memory is counted at its own bit width.

    Arguments:
        output_pixels: output height x width.
        kernel_size: (kh, kw).
        in_channels, filters, groups: the conv's channels; the kernel is (kh, kw, Cin / groups, Cout).
        input_bits: the input quantizer's precision (None: no quantizer, 32-bit).
        kernel_bits: the kernel quantizer's precision (None: 32-bit).
        use_bias: a 32-bit bias of `filters` values (no MACs).

    Returns:
        The layer's `Cost`.
    """
    kernel = math.prod(kernel_size) * (in_channels // groups) * filters
    kernel_bits = kernel_bits or FULL_PRECISION_BITS
    macs = kernel * output_pixels
    binary = max(input_bits or FULL_PRECISION_BITS, kernel_bits) == 1
    bias = filters if use_bias else 0
    return Cost.from_counts(binary_macs=macs if binary else 0, fp_macs=0 if binary else macs,
                            memory_bits=kernel * kernel_bits + FULL_PRECISION_BITS * bias, params=kernel + bias)


def dense_cost(*, in_features: int, units: int, use_bias: bool = True) -> Cost:
    """The cost of a full-precision dense layer, as larq's `ModelProfile` counts it (bias: no MACs)."""
    kernel, bias = in_features * units, units if use_bias else 0
    return Cost.from_counts(binary_macs=0, fp_macs=kernel, memory_bits=FULL_PRECISION_BITS * (kernel + bias),
                            params=kernel + bias)


def batch_norm_cost(channels: int) -> Cost:
    """The cost of a BatchNormalization (center and scale): no MACs, and, as larq counts it, the moving
    mean and variance only (it folds beta and gamma into them): 2 x channels 32-bit weights."""
    return Cost.from_counts(binary_macs=0, fp_macs=0, memory_bits=2 * FULL_PRECISION_BITS * channels,
                            params=2 * channels)


class CostTally:
    """Sums the analytic costs of the layers of one model, by layer name.

    Attributes:
        layers: {layer name: `Cost`}, in the order they were added.
    """

    def __init__(self):
        self.layers: OrderedDict[str, Cost] = OrderedDict()

    def add(self, name: str, layer_cost: Cost) -> None:
        """Records the cost of layer `name`.

        Raises:
            ValueError: if a layer of that name was already added (as Keras refuses two layers of one name).
        """
        if name in self.layers:
            raise ValueError(f"Two layers are named {name!r}; layer names must be unique.")
        self.layers[name] = layer_cost

    def total(self) -> Cost:
        """The model's `Cost`: the sums of the layers' counts, `flops` computed from them."""
        return Cost.from_counts(**{
            field: sum(getattr(c, field) for c in self.layers.values())
            for field in ("binary_macs", "fp_macs", "memory_bits", "params")
        })


def profile(model: tf.keras.Model) -> Cost:
    """Returns the binary-aware `Cost` of any built Keras model.

    Arguments:
        model: a built `tf.keras.Model` (functional, sequential or subclassed
            with known output shapes), larq-zoo models included.

    Returns:
        A `Cost`.

    Raises:
        ValueError: if the model is not built, or a quantizer has no `precision`.
    """
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built; build it (call it on an input) before profiling.")
    try:
        model_profile = lq.models.ModelProfile(model)
    except (AttributeError, TypeError) as error:
        raise ValueError(
            f"Cannot profile {model.name!r}: {error}. A custom kernel quantizer needs a "
            "`precision` attribute; decorate it with @larq.utils.set_precision(1)."
        ) from error
    total_macs = model_profile.op_count("mac")
    binary_macs = model_profile.op_count("mac", 1)
    fp_macs = total_macs - binary_macs
    return Cost(
        binary_macs=int(binary_macs),
        fp_macs=int(fp_macs),
        flops=float(binary_macs * BINARY_MAC_FLOPS + fp_macs),
        memory_bits=int(model_profile.memory),
        params=int(model_profile.weight_count()),
    )


class CostCache:
    """Caches the `Cost` of (space, genome, input shape, classes, quantizer), so search
    trials never cost the same candidate twice.

    When the space computes its cost analytically (`space.analytic_cost`, true for every
    registered space), no model is ever built: `space.cost(genome, ...)` counts what
    `profile(space.build(genome, ...))` would, in well under a millisecond. Otherwise the
    genome's model is built (or the given one is used) and profiled.

    Arguments:
        space: a `SearchSpace`.
        input_shape: HxWxC of the candidates.
        num_classes: classifier outputs.
        quantizer: the preset name.
        max_entries: least recently used entries beyond this are dropped.
    """

    def __init__(self, space, *, input_shape: Sequence[int], num_classes: int, quantizer: str, max_entries: int = 4096):
        self.space = space
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.quantizer = quantizer
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Cost] = OrderedDict()

    def _key(self, genome: Mapping[str, Any]) -> str:
        return json.dumps(self.space.genome(genome), sort_keys=True)

    def __call__(self, genome: Mapping[str, Any], model: Optional[tf.keras.Model] = None) -> Cost:
        """The cost of `genome`; `model`, if given, is that genome's built model (used only when the
        space has no analytic cost, to save a build)."""
        key = self._key(genome)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        arguments = dict(input_shape=self.input_shape, num_classes=self.num_classes, quantizer=self.quantizer)
        if getattr(self.space, "analytic_cost", False):
            cost = self.space.cost(genome, **arguments)
        else:
            cost = profile(model if model is not None else self.space.build(genome, **arguments))
        self._entries[key] = cost
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return cost
