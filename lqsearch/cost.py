"""Binary-aware cost of any Keras model, from larq's `ModelProfile`.

`FLOPs = binary_MACs / 64 + full_precision_MACs`, as in Bi-Real Net and both
papers (Shen et al. 2019, Phan et al. 2020). A MAC counts as binary when both its input and its kernel are
1-bit (a larq `QuantConv2D`/`QuantDense` with 1-bit quantizers); every other
MAC, including 2..16-bit ones, is counted at full precision (conservative).

larq reads a quantizer's `precision` attribute. A kernel quantizer function
without one crashes the profile; decorate it with `@larq.utils.set_precision(1)`.
A quantizer applied as a separate activation layer is invisible to the
profile, so keep quantizers inside Quant layers.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Sequence

import larq as lq
import tensorflow as tf

__all__ = ["Cost", "profile", "CostCache"]

BINARY_MAC_FLOPS = 1 / 64


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
    trials never build and profile the same candidate twice.

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
        """The cost of `genome`; `model`, if given, is that genome's built model (saves a build)."""
        key = self._key(genome)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        if model is None:
            model = self.space.build(
                genome, input_shape=self.input_shape, num_classes=self.num_classes, quantizer=self.quantizer
            )
        cost = profile(model)
        self._entries[key] = cost
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return cost
