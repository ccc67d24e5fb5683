"""Weight inheritance: start a candidate from the first channels of a wider trained network.

Shen et al. train the 4x-wide network once and initializes every candidate by
"intercepting the first corresponding channels". Layers are matched by name
(lqsearch spaces name their layers after genes, the same for every genome);
each weight of the candidate takes the leading slice of the source weight
along every axis. A dense layer after a `Flatten` of an HxWxC map is sliced
per spatial position, so it keeps the first channels at every pixel.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import tensorflow as tf

__all__ = ["inherit_first_channels", "leading_slice"]


def leading_slice(source: np.ndarray, shape) -> np.ndarray:
    """The leading `shape`-sized block of `source`.

    Raises:
        ValueError: if `shape` has another rank or is larger than `source` somewhere.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) != source.ndim or any(t > s for t, s in zip(shape, source.shape)):
        raise ValueError(f"cannot take a {shape} slice of a weight of shape {source.shape}; the source must be at least as wide")
    return source[tuple(slice(0, d) for d in shape)]


def _flatten_input_shape(model: tf.keras.Model, dense: tf.keras.layers.Layer):
    """The HxWxC shape flattened into `dense`, or None when its input is not a Flatten."""
    inbound = dense.inbound_nodes[0].inbound_layers if dense.inbound_nodes else None
    if isinstance(inbound, tf.keras.layers.Flatten):
        return tuple(inbound.input_shape[1:])
    return None


def _slice_flattened_kernel(source: np.ndarray, source_map, target_map, target_shape) -> np.ndarray:
    spatial = int(np.prod(source_map[:-1]))
    if tuple(source_map[:-1]) != tuple(target_map[:-1]):
        raise ValueError(f"spatial sizes differ ({source_map} vs {target_map}); both networks need the same input size")
    grid = source.reshape(spatial, source_map[-1], source.shape[-1])
    sliced = grid[:, : target_map[-1], : target_shape[-1]]
    return sliced.reshape(target_shape)


def inherit_first_channels(target: tf.keras.Model, source: tf.keras.Model) -> Dict[str, List[str]]:
    """Copies into `target` the leading channels of every same-named layer of `source`.

    Arguments:
        target: the candidate (narrower or equal in every layer).
        source: the trained wide network (e.g. uniform 4x), same layer names.

    Returns:
        {"copied": [layer names], "skipped": [target layers with no source counterpart]}.

    Raises:
        ValueError: if a layer of `target` is wider than its source layer.
    """
    source_layers = {layer.name: layer for layer in source.layers}
    copied, skipped = [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        origin = source_layers.get(layer.name)
        if origin is None or len(origin.weights) != len(layer.weights):
            skipped.append(layer.name)
            continue
        target_map = _flatten_input_shape(target, layer) if isinstance(layer, tf.keras.layers.Dense) else None
        new_weights = []
        for weight, source_weight in zip(layer.get_weights(), origin.get_weights()):
            if target_map is not None and weight.ndim == 2:
                source_map = _flatten_input_shape(source, origin)
                new_weights.append(_slice_flattened_kernel(source_weight, source_map, target_map, weight.shape))
            else:
                try:
                    new_weights.append(leading_slice(source_weight, weight.shape))
                except ValueError as error:
                    raise ValueError(f"layer {layer.name!r}: {error}") from None
        layer.set_weights(new_weights)
        copied.append(layer.name)
    return {"copied": copied, "skipped": skipped}
