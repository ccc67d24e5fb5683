"""Weight inheritance: start a candidate from the first channels of a wider trained network.

Shen et al. train the 4x-wide network once and initialize every candidate by
"intercepting the first corresponding channels". Layers are matched by name
(lqsearch spaces name their layers after genes, the same for every genome);
each weight of the candidate takes the leading slice of the source weight
along every axis. A dense layer after a `Flatten` of an HxWxC map is sliced
per spatial position, so it keeps the first channels at every pixel.

A grouped conv inherits as the weight-sharing supernet shares (Phan et al.,
Fig. 4): the source kernel, as a dense block-diagonal kernel, is cropped to the
first channels and the candidate's groups are gathered from its block
diagonal (`lqsearch.supernet.elastic.grouped_kernel`), so a candidate inherited
from the ungrouped widest network equals `Supernet.extract` of the same genome
after `Supernet.inject` of that network.

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378.
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import tensorflow as tf

from lqsearch.supernet.elastic import block_diagonal, grouped_kernel

__all__ = ["inherit_first_channels", "leading_slice", "inherited_kernel"]


def leading_slice(source: np.ndarray, shape) -> np.ndarray:
    """The leading `shape`-sized block of `source`.

    Raises:
        ValueError: if `shape` has another rank or is larger than `source` somewhere.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) != source.ndim or any(t > s for t, s in zip(shape, source.shape)):
        raise ValueError(f"cannot take a {shape} slice of a weight of shape {source.shape}; "
                         "the source must be at least as wide")
    return source[tuple(slice(0, d) for d in shape)]


def inherited_kernel(source: np.ndarray, source_groups: int, shape, groups: int) -> np.ndarray:
    """The `shape` kernel (kh, kw, cin / groups, cout) a conv with `groups` inherits from a source kernel.

    Arguments:
        source: the source conv's kernel, (kh, kw, Cin / source_groups, Cout).
        source_groups: the source conv's group count.
        shape: the target kernel's shape.
        groups: the target conv's group count.

    Raises:
        ValueError: if the target is wider than the source.
    """
    if groups == 1 and source_groups == 1:
        return leading_slice(source, shape)
    dense = block_diagonal(source, source_groups) if source_groups > 1 else source
    cin, cout = int(shape[2]) * groups, int(shape[3])
    cropped = leading_slice(dense, (*dense.shape[:2], cin, cout))
    return grouped_kernel(tf.constant(cropped), groups).numpy()


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
        groups = (getattr(layer, "groups", 1), getattr(origin, "groups", 1))
        new_weights = []
        for weight, source_weight in zip(layer.get_weights(), origin.get_weights()):
            try:
                if target_map is not None and weight.ndim == 2:
                    source_map = _flatten_input_shape(source, origin)
                    new_weights.append(_slice_flattened_kernel(source_weight, source_map, target_map, weight.shape))
                elif weight.ndim == 4:
                    new_weights.append(inherited_kernel(source_weight, groups[1], weight.shape, groups[0]))
                else:
                    new_weights.append(leading_slice(source_weight, weight.shape))
            except ValueError as error:
                raise ValueError(f"layer {layer.name!r}: {error}") from None
        layer.set_weights(new_weights)
        copied.append(layer.name)
    return {"copied": copied, "skipped": skipped}
