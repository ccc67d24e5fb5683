"""lqsearch: evolutionary search for accurate, cheap binary neural networks.

Public API::

    import lqsearch
    space = lqsearch.spaces.get("vgg_small")           # lqsearch.spaces.list_spaces()
    model = space.build(space.genome([0.5, 2, 1, 1, 1, 0.5]), quantizer="dorefa")
    lqsearch.cost.profile(model)                        # Cost(binary_macs, fp_macs, flops, memory_bits, params)
    oracle = lqsearch.EvolutionaryOracle(objective=..., max_trials=..., population_size=...)
    settings = lqsearch.SearchSettings(population_size=32, num_parents=16, num_crossovers=16, num_mutations=16)
    evaluation = lqsearch.search.EvaluationConfig(mode="inherit", epochs=10)
    tuner = lqsearch.BinaryArchitectureSearch(space, dataset, settings=settings, evaluation=evaluation)
    supernet = lqsearch.Supernet(space, input_shape=(32, 32, 3), num_classes=10)
    lqsearch.zoo.load("quickstart-vgg-small", registry="registry")
    # every refusal of bad input is a lqsearch.LqsearchError (a ValueError) saying how to fix it

Subpackages: `spaces`, `data`, `search`, `supernet`, `deploy`, `run`, `cli`, over
the foundation modules `genome`, `cost`, `quantizers`, `training`, `io`, `checks` and
`errors` (`LqsearchError`, the base class of every refusal of bad input).

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378.
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
"""
import importlib
import os

from lqsearch._version import __version__
from lqsearch.errors import LqsearchError

# TensorFlow computes the gradients of grouped convolutions on the CPU only through
# oneDNN ("Gradients for grouped convolutions are not supported on CPU" otherwise),
# and turns oneDNN on by default only on some CPUs. It reads this variable when it is
# first imported: import lqsearch before tensorflow, or set it yourself.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Names load on first use, so `import lqsearch` does not import TensorFlow until needed.
_LAZY = {
    "spaces": "lqsearch.spaces",
    "cost": "lqsearch.cost",
    "zoo": "lqsearch.zoo",
    "load_dataset": "lqsearch.data",
    "EvolutionaryOracle": "lqsearch.search.oracle",
    "SearchSettings": "lqsearch.search.settings",
    "BinaryArchitectureSearch": "lqsearch.search.tuner",
    "Supernet": "lqsearch.supernet.supernet",
    "load_recipe": "lqsearch.run.recipes",
    "run_recipe": "lqsearch.run.runner",
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'lqsearch' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if module.__name__ == f"lqsearch.{name}" else getattr(module, name)


def __dir__():
    return sorted(__all__)


__all__ = ["__version__", "LqsearchError", *_LAZY]
