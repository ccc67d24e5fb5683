"""Which gene drives which conv of a space: the probe `Supernet` runs once when it is built."""
from __future__ import annotations

from typing import Dict

import tensorflow as tf

from lqsearch.supernet import elastic

__all__ = ["conv_configs", "probe_controls"]


def conv_configs(model: tf.keras.Model) -> Dict[str, tuple]:
    """{conv name: (filters, groups)} of a static model's `Conv2D` / `QuantConv2D` layers."""
    return {
        layer.name: (int(layer.filters), int(layer.groups))
        for layer in model.layers
        if type(layer) in elastic.CONV_TYPES
    }


def probe_controls(space, configs_of) -> Dict[str, list]:
    """Finds which gene sets each conv's filters and groups, by changing one gene at a time.

    Arguments:
        space: the search space.
        configs_of: genome -> {conv name: (filters, groups)} of its static model.

    Returns:
        {conv name: [filters gene or None, groups gene or None]} for every conv.

    Raises:
        ValueError: if two genes drive the same attribute of one conv.
    """
    cheapest = space.cheapest()
    base = configs_of(cheapest)
    controls = {name: [None, None] for name in base}
    for gene in space.genes:
        if gene.cheapest == gene.costliest:
            continue
        probe = configs_of({**cheapest, gene.name: gene.costliest})
        for name, config in probe.items():
            for slot in (0, 1):
                if config[slot] == base[name][slot]:
                    continue
                if controls[name][slot] is not None:
                    attribute = ("filters", "groups")[slot]
                    raise ValueError(
                        f"Space {space.name!r}: genes {controls[name][slot]!r} and {gene.name!r} both change "
                        f"the {attribute} of layer {name!r}; a supernet needs one gene per attribute."
                    )
                controls[name][slot] = gene.name
    return controls
