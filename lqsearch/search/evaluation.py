"""Candidate evaluation: how the search turns a genome into an accuracy.

Three modes (`EvaluationConfig.mode`):

- `scratch`: train the candidate `epochs` epochs from fresh weights on the
  search-train split, then measure top-1 on the search-val split (both from
  the TRAIN set; the test set is never used by the search).
- `inherit` (Shen et al.): train the widest uniform network once (cached in the run
  directory), start every candidate from its first channels, then train
  `epochs` epochs.
- `oneshot` (Phan et al., generalized): train one weight-sharing supernet once
  (checkpointed in the run directory), then extract each candidate with its
  inherited weights, recalibrate BatchNorm and evaluate, with no training.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from lqsearch import training
from lqsearch.checks import check_bool, check_choice, check_int
from lqsearch.deploy import artifact
from lqsearch.search.inheritance import inherit_first_channels
from lqsearch.supernet.supernet import Supernet

__all__ = ["EvaluationConfig", "make_evaluator", "MODES"]

MODES = ("scratch", "inherit", "oneshot")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """How candidates are evaluated.

    Attributes:
        mode: `scratch`, `inherit` or `oneshot`.
        epochs: training epochs per candidate (`scratch`, `inherit`).
        training: optimizer and schedule of candidate training (its `epochs` is replaced by `epochs`).
        widest_epochs: epochs to train the widest network once (`inherit`).
        supernet_steps: training steps of the supernet (`oneshot`).
        recalibration_batches: BatchNorm recalibration batches (`oneshot`; 0 switches it off).
        sandwich: sandwich rule for supernet training (`oneshot`).
        distill: in-place distillation from the largest sub-network (`oneshot`, with `sandwich`).
    """

    mode: str = "scratch"
    epochs: int = 2
    training: training.TrainingConfig = training.PRESETS["cpu"]
    widest_epochs: int = 4
    supernet_steps: int = 500
    recalibration_batches: int = 10
    sandwich: bool = False
    distill: bool = False

    def __post_init__(self):
        check_choice("evaluation.mode", self.mode, MODES)
        for name in ("epochs", "widest_epochs", "supernet_steps", "recalibration_batches"):
            check_int(f"evaluation.{name}", getattr(self, name), minimum=0)
        check_bool("evaluation.sandwich", self.sandwich)
        check_bool("evaluation.distill", self.distill)


class _Evaluator:
    """Base: holds the space, data and build arguments; `prepare` once, then `evaluate` per genome."""

    def __init__(self, space, dataset, config: EvaluationConfig, *, quantizer: str, run_dir: Path, verbose: int = 0, strategy=None):
        self.space = space
        self.dataset = dataset
        self.config = config
        self.quantizer = quantizer
        self.run_dir = Path(run_dir)
        self.verbose = verbose
        self.strategy = strategy or tf.distribute.get_strategy()

    def build(self, genome) -> tf.keras.Model:
        with self.strategy.scope():
            return self.space.build(
                genome, input_shape=self.dataset.input_shape, num_classes=self.dataset.num_classes, quantizer=self.quantizer
            )

    def prepare(self) -> None:
        """One-off work before the first candidate (train the widest network or the supernet)."""

    def evaluate(self, genome, *, log_dir=None) -> Tuple[float, Optional[tf.keras.Model]]:
        """Returns (top-1 accuracy in percent on search-val, the evaluated model or None)."""
        raise NotImplementedError

    def _train_and_score(self, model, epochs: int, log_dir=None) -> float:
        config = self.config.training.replace(epochs=epochs)
        training.fit(
            model, self.dataset.search_train, config, num_classes=self.dataset.num_classes, log_dir=log_dir, verbose=self.verbose
        )
        return training.evaluate(model, self.dataset.search_val, num_classes=self.dataset.num_classes)["accuracy"]


class ScratchEvaluator(_Evaluator):
    """Trains every candidate from fresh weights."""

    def evaluate(self, genome, *, log_dir=None):
        model = self.build(genome)
        return self._train_and_score(model, self.config.epochs, log_dir), model


class InheritEvaluator(_Evaluator):
    """Shen et al.: candidates start from the first channels of the widest network, trained once."""

    def prepare(self) -> None:
        directory = self.run_dir / "inherit" / "widest"
        if (directory / artifact.CARD_FILE).exists():
            self.widest, _ = artifact.load(directory)
            return
        genome = self.space.costliest()
        self.widest = self.build(genome)
        accuracy = self._train_and_score(self.widest, self.config.widest_epochs)
        card = artifact.ModelCard(
            space=self.space.get_config(), genome=genome, quantizer=self.quantizer,
            input_shape=tuple(self.dataset.input_shape), num_classes=self.dataset.num_classes,
            metrics={"search_val_accuracy": accuracy}, dataset=self.dataset.name,
        )
        artifact.save(directory, self.widest, card)

    def evaluate(self, genome, *, log_dir=None):
        model = self.build(genome)
        inherit_first_channels(model, self.widest)
        return self._train_and_score(model, self.config.epochs, log_dir), model


class OneshotEvaluator(_Evaluator):
    """Phan et al.: one weight-sharing supernet, trained once; candidates are extracted and evaluated."""

    def prepare(self) -> None:
        self.supernet = Supernet(
            self.space, input_shape=self.dataset.input_shape, num_classes=self.dataset.num_classes, quantizer=self.quantizer
        )
        self.supernet.train(
            self.dataset.search_train,
            steps=self.config.supernet_steps,
            checkpoint_dir=self.run_dir / "supernet",
            sandwich=self.config.sandwich,
            distill=self.config.distill,
            verbose=self.verbose,
        )

    def evaluate(self, genome, *, log_dir=None):
        batches = self.dataset.take_batches("search_train", self.config.recalibration_batches)
        accuracy = self.supernet.evaluate(
            genome,
            self.dataset.search_val,
            recalibration_batches=batches,
            recalibrate=self.config.recalibration_batches > 0,
        )
        return 100.0 * float(accuracy), None


_EVALUATORS: Dict[str, Any] = {"scratch": ScratchEvaluator, "inherit": InheritEvaluator, "oneshot": OneshotEvaluator}


def make_evaluator(space, dataset, config: EvaluationConfig, **kwargs) -> _Evaluator:
    """The evaluator of `config.mode` (see the module docstring)."""
    return _EVALUATORS[config.mode](space, dataset, config, **kwargs)
