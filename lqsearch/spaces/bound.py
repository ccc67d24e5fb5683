"""`BoundSpace`: a search space with its input shape, classes and quantizer bound once (`space.bind(...)`)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import tensorflow as tf

from lqsearch.cost import Cost, CostCache

__all__ = ["BoundSpace"]


class BoundSpace:
    """A `SearchSpace` with the four things that travel together bound once, as larq-zoo's factories do.

    Make one with `space.bind(input_shape=..., num_classes=..., quantizer=...)`; then
    `build(genome)` and `cost(genome)` need only the genome. Costs are cached by genome.

    Attributes:
        space: the `SearchSpace`.
        input_shape: HxWxC of every model.
        num_classes: classifier outputs.
        quantizer: the quantizer preset name.
    """

    def __init__(self, space, *, input_shape: Sequence[int], num_classes: int, quantizer: Optional[str] = None):
        self.space = space
        self.quantizer = quantizer or space.default_quantizer
        self.input_shape: Tuple[int, ...] = tuple(input_shape)
        self.num_classes = num_classes
        space.build_arguments(space.cheapest(), self.input_shape, num_classes, self.quantizer)  # validates all four
        self._costs = CostCache(space, input_shape=self.input_shape, num_classes=num_classes, quantizer=self.quantizer)

    @property
    def genes(self):
        """The space's genes."""
        return self.space.genes

    def build(self, genome: Union[Sequence, Mapping[str, Any]], *, name: Optional[str] = None) -> tf.keras.Model:
        """The Keras model of `genome` (see `SearchSpace.build`)."""
        return self.space.build(genome, input_shape=self.input_shape, num_classes=self.num_classes,
                                quantizer=self.quantizer, name=name)

    def cost(self, genome: Union[Sequence, Mapping[str, Any]], model: Optional[tf.keras.Model] = None) -> Cost:
        """The `Cost` of `genome`, cached (`model`: its built model, to save a build where the cost is not analytic)."""
        return self._costs(genome, model)

    def __call__(self, genome, model=None) -> Cost:
        return self.cost(genome, model)

    def __repr__(self) -> str:
        return (f"BoundSpace({self.space.name!r}, input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"quantizer={self.quantizer!r})")
