"""Evolutionary architecture search on Keras Tuner.

`EvolutionaryOracle` (a `keras_tuner.Oracle` on any search space) breeds genomes
with the genetic `operators`; `BinaryArchitectureSearch` (a `keras_tuner.Tuner`)
turns each genome into a model, its cost, its accuracy (`evaluation`: scratch,
inherit through `inheritance`, or one-shot) and its fitness; `pareto` gives the
accuracy/FLOPs front.

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378.
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
"""
from lqsearch.search.evaluation import EvaluationConfig
from lqsearch.search.oracle import EvolutionaryOracle
from lqsearch.search.settings import EvolutionSettings, SearchSettings
from lqsearch.search.tuner import BinaryArchitectureSearch, SearchCallback, SpaceHyperModel, fitness

__all__ = ["EvolutionaryOracle", "EvolutionSettings", "SearchSettings", "BinaryArchitectureSearch", "SearchCallback",
           "SpaceHyperModel", "EvaluationConfig", "fitness"]
