"""`SearchSpace`: the base class of every registered search space, and the space registry."""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import tensorflow as tf

from lqsearch import quantizers
from lqsearch._registry import Registry
from lqsearch.checks import check_int, check_number
from lqsearch.cost import Cost
from lqsearch.cost import profile as profile_model
from lqsearch.genome import Gene, GeneSet, Genome
from lqsearch.spaces import _blocks
from lqsearch.spaces.bound import BoundSpace

__all__ = ["SearchSpace", "register_space", "get", "list_spaces", "from_config"]

_SPACES = Registry("search space", "spaces")
#: Wider than this, a layer has millions of channels: a typo, not a network.
MAX_WIDTH_MULTIPLIER = 64.0


def register_space(name: str) -> Callable[[type], type]:
    """Class decorator that registers a `SearchSpace` subclass under `name`."""
    return _SPACES.register(name)


def list_spaces() -> list:
    """Returns the names of the registered search spaces, sorted."""
    return _SPACES.names()


def get(name: str, **options: Any) -> SearchSpace:
    """Returns the search space registered as `name`, configured with `options`.

    Arguments:
        name: a registered name, see `list_spaces()`.
        **options: the space's options (e.g. `width_multiplier`, `stem`, `lce_compatible`).

    Raises:
        ValueError: on an unknown name (listing the registered ones) or an unknown option.
    """
    return _SPACES.lookup(name)(**options)


def from_config(config: Mapping[str, Any]) -> SearchSpace:
    """Rebuilds a space from `space.get_config()`."""
    return get(config["name"], **dict(config.get("options", {})))


class SearchSpace:
    """An architecture family whose per-layer choices are genes.

    Subclasses set `default_input_shape`, `default_num_classes`,
    `default_quantizer`, `option_defaults`, and implement `_make_genes()` and
    `_build(genome, inputs, num_classes, preset)`. A `_build` that makes every
    layer with the helpers of `lqsearch.spaces._blocks` also runs on shapes
    alone; such a space sets `analytic_cost = True`, and `cost()` then traces it
    without building a model.

    Arguments:
        **options: space options; each must be a key of `option_defaults`.

    Raises:
        ValueError: on an unknown option or an invalid option value.
    """

    name: str = ""
    default_input_shape: Tuple[int, ...] = (32, 32, 3)
    default_num_classes: int = 10
    default_quantizer: str = "dorefa"
    option_defaults: Dict[str, Any] = {"width_multiplier": 1.0}
    #: True when `_build` uses only `_blocks` helpers, so `cost()` needs no model.
    analytic_cost: bool = False

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(self.option_defaults))
        if unknown:
            raise ValueError(
                f"Unknown option(s) {unknown} for search space {self.name!r}; "
                f"valid options are {sorted(self.option_defaults)}."
            )
        self.options = {**self.option_defaults, **options}
        check_number("width_multiplier", self.options.get("width_multiplier", 1.0), minimum=0,
                     maximum=MAX_WIDTH_MULTIPLIER, low_open=True)
        self.genes = GeneSet(self._make_genes())

    # -- genes ---------------------------------------------------------------
    def _make_genes(self) -> Sequence[Gene]:
        raise NotImplementedError

    def genome(self, values: Union[Sequence, Mapping[str, Any]]) -> Genome:
        """Validates a genome (a sequence in paper order, or a mapping); see `GeneSet.genome`."""
        return self.genes.genome(values)

    def uniform(self, value: float) -> Genome:
        """Every gene at `value` (the nearest allowed value where it is not allowed)."""
        return self.genes.uniform(value)

    def cheapest(self) -> Genome:
        """The lowest-cost genome (smallest widths, most groups)."""
        return self.genes.cheapest()

    def costliest(self) -> Genome:
        """The highest-cost genome (largest widths, fewest groups)."""
        return self.genes.costliest()

    def reference_genome(self) -> Genome:
        """The unexpanded binary network, whose FLOPs normalize the fitness (`uniform(1)`)."""
        return self.uniform(1)

    # -- building ------------------------------------------------------------
    def channels(self, base: int, ratio: float = 1.0) -> int:
        """Channels of a layer of base width `base` at expansion `ratio` (at least 1)."""
        return max(1, int(round(base * ratio * self.options.get("width_multiplier", 1.0))))

    def build(
        self,
        genome: Union[Sequence, Mapping[str, Any]],
        *,
        input_shape: Optional[Sequence[int]] = None,
        num_classes: Optional[int] = None,
        quantizer: Optional[str] = None,
        name: Optional[str] = None,
    ) -> tf.keras.Model:
        """Builds the Keras functional model of one genome.

        Arguments:
            genome: a sequence in paper order or a mapping of gene names.
            input_shape: HxWxC, defaults to the space's `default_input_shape`.
            num_classes: classifier outputs, defaults to `default_num_classes`.
            quantizer: a preset name from `lqsearch.quantizers` (default: the space's).
            name: the model name, defaults to the space name.

        Returns:
            A `tf.keras.Model` returning logits. The first conv and the classifier
            are full precision; every other conv is a `larq.layers.QuantConv2D`.

        Raises:
            ValueError: on an invalid genome, input shape, class count or preset.
        """
        genome, input_shape, num_classes, preset = self.build_arguments(genome, input_shape, num_classes, quantizer)
        inputs = tf.keras.Input(shape=input_shape, name="image")
        logits = self._build(genome, inputs, num_classes, preset)
        return tf.keras.Model(inputs, logits, name=name or self.name)

    def bind(self, *, input_shape: Optional[Sequence[int]] = None, num_classes: Optional[int] = None,
             quantizer: Optional[str] = None) -> BoundSpace:
        """This space with its input shape, classes and quantizer bound once (defaults: the space's).

        Returns:
            A `lqsearch.spaces.BoundSpace` with `.build(genome)` and `.cost(genome)` (cached).

        Raises:
            ValueError: on an invalid input shape, class count or preset.
        """
        return BoundSpace(self, input_shape=input_shape or self.default_input_shape,
                          num_classes=self.default_num_classes if num_classes is None else num_classes,
                          quantizer=quantizer)

    def build_arguments(self, genome, input_shape, num_classes, quantizer) -> tuple:
        """Validated (genome, input shape, classes, preset), defaults filled in."""
        genome = self.genome(genome)
        input_shape = tuple(input_shape or self.default_input_shape)
        num_classes = self.default_num_classes if num_classes is None else num_classes
        _check_build_args(input_shape, num_classes)
        return genome, input_shape, num_classes, quantizers.get(quantizer or self.default_quantizer)

    def cost(
        self,
        genome: Union[Sequence, Mapping[str, Any]],
        *,
        input_shape: Optional[Sequence[int]] = None,
        num_classes: Optional[int] = None,
        quantizer: Optional[str] = None,
    ) -> Cost:
        """The `Cost` of `build(genome, ...)`, equal to `lqsearch.cost.profile` of the built model.

        With `analytic_cost`, the space's `_build` runs on shapes alone and no model is
        built (tens of microseconds); otherwise the model is built and profiled.

        Arguments:
            genome, input_shape, num_classes, quantizer: as in `build`.

        Returns:
            A `lqsearch.cost.Cost`.

        Raises:
            ValueError: as `build`: an invalid genome, input shape, class count or preset,
                or an input too small for the network.
        """
        if not self.analytic_cost:
            return profile_model(self.build(genome, input_shape=input_shape, num_classes=num_classes,
                                            quantizer=quantizer))
        return self.layer_costs(genome, input_shape=input_shape, num_classes=num_classes,
                                quantizer=quantizer).total()

    def layer_costs(
        self,
        genome: Union[Sequence, Mapping[str, Any]],
        *,
        input_shape: Optional[Sequence[int]] = None,
        num_classes: Optional[int] = None,
        quantizer: Optional[str] = None,
    ):
        """The analytic cost of every layer with weights of `build(genome, ...)`, without building it.

        Arguments:
            genome, input_shape, num_classes, quantizer: as in `build`.

        Returns:
            A `lqsearch.cost.CostTally`: `.layers` maps each layer name to its `Cost`
            (convs, BatchNorms, the classifier), `.total()` is the model's.

        Raises:
            NotImplementedError: if the space has no analytic cost (`analytic_cost` is False).
            ValueError: as `cost`.
        """
        return self._trace(genome, input_shape, num_classes, quantizer).tally

    def conv_configs(
        self,
        genome: Union[Sequence, Mapping[str, Any]],
        *,
        input_shape: Optional[Sequence[int]] = None,
        num_classes: Optional[int] = None,
        quantizer: Optional[str] = None,
    ) -> Dict[str, Tuple[int, int]]:
        """{conv name: (filters, groups)} of every conv of `build(genome, ...)`, without building it.

        Arguments:
            genome, input_shape, num_classes, quantizer: as in `build`.

        Raises:
            NotImplementedError: if the space has no analytic cost (`analytic_cost` is False).
            ValueError: as `cost`.
        """
        return dict(self._trace(genome, input_shape, num_classes, quantizer).convs)

    def _trace(self, genome, input_shape, num_classes, quantizer) -> _blocks.Trace:
        """Runs `_build` on shapes alone (see `lqsearch.spaces._blocks`)."""
        if not self.analytic_cost:
            raise NotImplementedError(
                f"Space {self.name!r} has no analytic cost; use cost() (it builds and profiles the model)."
            )
        genome, input_shape, num_classes, preset = self.build_arguments(genome, input_shape, num_classes, quantizer)
        features = _blocks.input_map(input_shape)
        self._build(genome, features, num_classes, preset)
        return features.trace

    def _build(self, genome: Genome, inputs, num_classes: int, preset) -> tf.Tensor:
        raise NotImplementedError

    def layer_table(self, genome: Union[Sequence, Mapping[str, Any]]) -> list:
        """[(gene name, concrete value)]: output channels for width genes, group counts for
        group genes. Used by reports (channels per layer, as in Shen et al.'s Figure 2)."""
        genome = self.genome(genome)
        return [(gene.name, self._concrete(gene, genome[gene.name])) for gene in self.genes]

    def _concrete(self, gene: Gene, value) -> int:
        return int(value)

    def get_config(self) -> Dict[str, Any]:
        """`{"name": ..., "options": ...}`, enough for `lqsearch.spaces.from_config`."""
        return {"name": self.name, "options": dict(self.options)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, genes={len(self.genes)}, options={self.options})"


def _check_build_args(input_shape: Tuple[int, ...], num_classes: int) -> None:
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be three positive integers HxWxC, got {input_shape}.")
    for dimension in input_shape:
        check_int("each input_shape dimension", dimension, minimum=1)
    check_int("num_classes", num_classes, minimum=2)
