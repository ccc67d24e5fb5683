"""lqsearch: evolutionary search for accurate, cheap binary neural networks.

Public API::

    import lqsearch
    space = lqsearch.spaces.get("vgg_small")           # lqsearch.spaces.list_spaces()
    model = space.build(space.genome([0.5, 2, 1, 1, 1, 0.5]), quantizer="dorefa")
    lqsearch.cost.profile(model)                        # Cost(binary_macs, fp_macs, flops, memory_bits, params)
    oracle = lqsearch.EvolutionaryOracle(objective=..., max_trials=..., population_size=...)
    tuner = lqsearch.BinaryArchitectureSearch(space, dataset, max_trials=..., directory=...)
    lqsearch.zoo.load("quickstart-vgg-small", registry="registry")
"""
from lqsearch import cost, quantizers, spaces
from lqsearch._version import __version__
from lqsearch.genome import Gene, GeneSet
from lqsearch.oracle import EvolutionaryOracle


def __getattr__(name):
    """Heavier modules load on first use: `lqsearch.zoo`, `lqsearch.data`, `lqsearch.BinaryArchitectureSearch`..."""
    import importlib

    lazy_attributes = {"BinaryArchitectureSearch": ("lqsearch.tuner", "BinaryArchitectureSearch"),
                       "SpaceHyperModel": ("lqsearch.tuner", "SpaceHyperModel")}
    if name in lazy_attributes:
        module, attribute = lazy_attributes[name]
        return getattr(importlib.import_module(module), attribute)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"lqsearch.{name}")
    raise AttributeError(f"module 'lqsearch' has no attribute {name!r}")


_LAZY_MODULES = ("data", "training", "evaluation", "supernet", "recipes", "runner", "report", "zoo", "lce", "artifact", "final", "inheritance", "tuner", "oracle")

__all__ = [
    "__version__",
    "spaces",
    "cost",
    "quantizers",
    "Gene",
    "GeneSet",
    "EvolutionaryOracle",
    "BinaryArchitectureSearch",
    "SpaceHyperModel",
    *_LAZY_MODULES,
]
