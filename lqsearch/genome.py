"""Genes and genomes: the ordered choices that define one candidate architecture.

A `Gene` is one searchable choice (a layer's expansion ratio or group count)
with its allowed values. A `GeneSet` is the ordered tuple of genes of a search
space. It validates user genomes (a sequence in paper order, or a mapping by
gene name), returns them as plain dicts of Python scalars, and maps them to and
from `keras_tuner.HyperParameters` (one `hp.Choice` per gene).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Sequence, Tuple, Union

import keras_tuner as kt

__all__ = ["Gene", "GeneSet", "Genome"]

#: A validated genome: gene name -> allowed value, in gene order.
Genome = Dict[str, Union[int, float]]


@dataclass(frozen=True)
class Gene:
    """One searchable choice.

    Arguments:
        name: unique name, the layer it controls (also the `hp.Choice` name).
        values: allowed values, ascending.
        kind: `"width"` (a larger value costs more) or `"groups"` (a larger value costs less).
    """

    name: str
    values: Tuple[Union[int, float], ...]
    kind: str = "width"

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"Gene {self.name!r} has no allowed values.")
        if self.kind not in ("width", "groups"):
            raise ValueError(f"Gene {self.name!r}: kind must be 'width' or 'groups', not {self.kind!r}.")

    @property
    def cheapest(self):
        """The value with the lowest cost."""
        return self.values[0] if self.kind == "width" else self.values[-1]

    @property
    def costliest(self):
        """The value with the highest cost."""
        return self.values[-1] if self.kind == "width" else self.values[0]

    def validate(self, value: Any):
        """Returns the canonical allowed value equal to `value`.

        Raises:
            ValueError: naming the gene and its allowed values when `value` is not one of them.
        """
        if not isinstance(value, bool) and isinstance(value, (int, float)):
            for allowed in self.values:
                if math.isclose(float(value), float(allowed)):
                    return allowed
        raise ValueError(
            f"Gene {self.name!r}: value {value!r} is not allowed; "
            f"allowed values are {list(self.values)}."
        )

    def nearest(self, value: float):
        """Returns the allowed value nearest to `value` (on a log scale, ties go down)."""
        target = math.log(max(float(value), 1e-9))
        return min(self.values, key=lambda v: (abs(math.log(float(v)) - target), v))


class GeneSet:
    """The ordered genes of a search space.

    Arguments:
        genes: the genes, in paper order. Names must be unique.

    Raises:
        ValueError: on duplicate gene names.
    """

    def __init__(self, genes: Iterable[Gene]):
        self.genes: Tuple[Gene, ...] = tuple(genes)
        self._by_name = {g.name: g for g in self.genes}
        if len(self._by_name) != len(self.genes):
            raise ValueError("Gene names must be unique.")

    def __len__(self) -> int:
        return len(self.genes)

    def __iter__(self):
        return iter(self.genes)

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(g.name for g in self.genes)

    def genome(self, values: Union[Sequence, Mapping[str, Any]]) -> Genome:
        """Validates a genome given in paper order or by gene name.

        Arguments:
            values: a sequence with one value per gene, in order, or a mapping
                from every gene name to its value.

        Returns:
            A plain dict, gene name -> canonical allowed value, in gene order.

        Raises:
            ValueError: on a wrong length, a missing or unknown gene name, or a
                value that is not allowed (the message lists the allowed values).
        """
        if isinstance(values, Mapping):
            return self._from_mapping(values)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(
                f"A genome is a sequence of {len(self)} values or a mapping of gene names; "
                f"got {type(values).__name__}."
            )
        if len(values) != len(self):
            raise ValueError(
                f"The genome has {len(values)} values but this space has {len(self)} genes "
                f"({', '.join(self.names)}); give one value per gene, in this order."
            )
        return {g.name: g.validate(v) for g, v in zip(self.genes, values)}

    def _from_mapping(self, values: Mapping[str, Any]) -> Genome:
        unknown = [k for k in values if k not in self._by_name]
        if unknown:
            raise ValueError(
                f"Unknown gene name(s) {unknown}; the genes of this space are {list(self.names)}."
            )
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ValueError(f"The genome has no value for gene(s) {missing}; give every gene a value.")
        return {g.name: g.validate(values[g.name]) for g in self.genes}

    def uniform(self, value: float) -> Genome:
        """Every gene at `value`, or at its nearest allowed value where `value` is not allowed.

        Raises:
            ValueError: if `value` is not a finite number (NaN, infinity, text, bool).
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"uniform value: {value!r} is not a finite number; give one of the genes' values, "
                             f"for example {self.genes[0].values[0]!r}.")
        return {g.name: g.nearest(value) for g in self.genes}

    def cheapest(self) -> Genome:
        """The genome with every gene at its lowest-cost value."""
        return {g.name: g.cheapest for g in self.genes}

    def costliest(self) -> Genome:
        """The genome with every gene at its highest-cost value."""
        return {g.name: g.costliest for g in self.genes}

    def as_list(self, genome: Mapping[str, Any]) -> list:
        """The genome's values in paper order."""
        genome = self.genome(genome)
        return [genome[n] for n in self.names]

    def declare(self, hp: kt.HyperParameters) -> Genome:
        """Declares one `hp.Choice` per gene on `hp` and returns the current genome.

        Use it inside a Keras Tuner `build(hp)`; the oracle then searches the genes.
        """
        return {g.name: hp.Choice(g.name, list(g.values), ordered=True) for g in self.genes}

    def hyperparameters(self, genome: Mapping[str, Any] | None = None) -> kt.HyperParameters:
        """A new `HyperParameters` with every gene declared, set to `genome` if given."""
        hp = kt.HyperParameters()
        self.declare(hp)
        if genome is not None:
            for name, value in self.genome(genome).items():
                hp.values[name] = value
        return hp

    def from_hyperparameters(self, hp: Union[kt.HyperParameters, Mapping[str, Any]]) -> Genome:
        """Reads the genome from `HyperParameters` (or their `.values`), ignoring other entries."""
        values = hp.values if isinstance(hp, kt.HyperParameters) else hp
        return self.genome({n: values[n] for n in self.names if n in values})
