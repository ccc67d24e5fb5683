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
import importlib

from lqsearch._version import __version__

# Submodules and classes load on first use, so `import lqsearch` (and the CLI) does
# not import TensorFlow until something needs it.
_MODULES = (
    "spaces", "cost", "quantizers", "genome", "data", "training", "evaluation", "supernet", "recipes",
    "runner", "report", "zoo", "lce", "artifact", "final", "inheritance", "tuner", "oracle",
)
_CLASSES = {
    "Gene": "lqsearch.genome",
    "GeneSet": "lqsearch.genome",
    "EvolutionaryOracle": "lqsearch.oracle",
    "BinaryArchitectureSearch": "lqsearch.tuner",
    "SpaceHyperModel": "lqsearch.tuner",
}


def __getattr__(name):
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"lqsearch.{name}")
    raise AttributeError(f"module 'lqsearch' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


__all__ = ["__version__", *_CLASSES, *_MODULES]
