"""Candidate evaluation: how the search turns a genome into an accuracy.

Three modes (`EvaluationConfig.mode`):

- `scratch`: train the candidate `epochs` epochs from fresh weights on the
  search-train split, then measure top-1 on the search-val split (both from
  the TRAIN set; the test set is never used by the search).
- `inherit` (Shen et al.): train the widest uniform network once (saved in the
  run directory), start every candidate from its first channels (the block
  diagonal for group genes, as the supernet does), then train `epochs` epochs.
- `oneshot` (Phan et al., generalized): train one weight-sharing supernet once
  (checkpointed in the run directory), then evaluate each candidate inside it:
  BatchNorm recalibrated on K training batches drawn ONCE per run directory and
  saved there (`recalibration.npz`; the random search, which shares the
  directory, and a resumed run read them), then search-val accuracy, with no training.
  The batches are saved and held as uint8 pixels whenever that is exact (a uint8 source:
  a quarter of float32's bytes) and converted back, one batch at a time, by the pipelines'
  own `images_to_float`, so the accuracies are those of the float batches, bit for bit.

`prepare()` does the one-off work before the first trial, under a file lock in
the run directory: in Keras Tuner's distributed mode the first process to take
the lock trains, the others wait (bounded by `prepare_timeout`) and then load
what it saved. Every candidate is built and trained under a seed derived from
the run's seed and its genome (`candidate_seed`): its initialisation, and the order
and augmentation of each of its epochs (`Dataset.seeded`), so a candidate's result
does not depend on the trials before it. The widest network trains under the seed
of its genome, the supernet under the run's seed.

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378.
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
"""
from __future__ import annotations

import contextlib
import hashlib
import io as _bytes_io
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Literal, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from pydantic import Field, model_validator
from tensorflow.python.framework import ops as _tf_ops

from lqsearch import io, training
from lqsearch.checks import check_int
from lqsearch.config import Config, ConfigError
from lqsearch.deploy import artifact
from lqsearch.pixels import exact_uint8, images_to_float
from lqsearch.search.inheritance import inherit_first_channels
from lqsearch.spaces import BoundSpace
from lqsearch.supernet.recalibration import recalibrate_batchnorm
from lqsearch.supernet.supernet import Supernet
from lqsearch.training import PRESETS, TrainingConfig

__all__ = ["EvaluationConfig", "make_evaluator", "candidate_seed", "MODES", "RECALIBRATION_FILE"]

MODES = ("scratch", "inherit", "oneshot")  # EvaluationConfig.mode's values
PREPARE_LOCK = ".prepare.lock"
PREPARE_RECORD = "preparation.json"
#: The one-shot evaluators' BatchNorm recalibration batches, drawn once per run directory.
RECALIBRATION_FILE = "recalibration.npz"


class EvaluationConfig(Config):
    """How candidates are evaluated (a recipe's `evaluation:` section).

    Attributes:
        mode: `scratch`, `inherit` or `oneshot`.
        epochs: training epochs per candidate (`scratch`, `inherit`).
        training: how candidates train (`scratch`, `inherit`): optimizer, learning rate, schedule and batch size.
            Its `epochs` is replaced by `epochs`, so the schedule decays over the candidate's own epochs: give
            candidates a schedule of their own (e.g. `{preset: shen_cifar, schedule: cosine}`; in `inherit`
            mode a small starting `learning_rate`), not a final-training preset whose step milestones
            (60/120/180) a 10-epoch candidate never reaches (refused).
        widest_epochs: epochs to train the widest network once (`inherit`).
        widest_training: how the widest network trains (`inherit`; its `epochs` is replaced by
            `widest_epochs`); None: as `training`.
        supernet_steps: training steps of the supernet (`oneshot`).
        recalibration_batches: how many training batches recalibrate BatchNorm (`oneshot`; 0 switches it off).
        sandwich: sandwich rule for supernet training (`oneshot`).
        distill: in-place distillation from the largest sub-network (`oneshot`, with `sandwich`).
        prepare_timeout: seconds a process waits for another one that prepares (distributed mode).

    Raises:
        ConfigError: on an unknown setting or a value out of range.
    """

    mode: Literal[MODES] = "scratch"
    epochs: int = Field(2, ge=0)
    training: TrainingConfig = PRESETS["cpu"]
    widest_epochs: int = Field(4, ge=0)
    supernet_steps: int = Field(500, ge=0)
    recalibration_batches: int = Field(10, ge=0)
    sandwich: bool = False
    distill: bool = False
    prepare_timeout: float = Field(48 * 3600.0, gt=0)
    widest_training: Optional[TrainingConfig] = None

    @model_validator(mode="after")
    def _schedules_fit_their_epochs(self):
        trainings = {"scratch": ("config",), "inherit": ("config", "widest"), "oneshot": ()}[self.mode]
        for name in trainings:
            try:
                getattr(self, name)()
            except ConfigError as error:
                keys = ("epochs",
                        "training") if name == "config" else ("widest_epochs", "widest_training (or training)")
                raise ValueError(f"{keys[1]} runs for {keys[0]}={getattr(self, keys[0])} here: {error}") from None
        return self

    def config(self) -> TrainingConfig:
        """The candidates' `TrainingConfig`: `training` with `epochs`."""
        return self.training.replace(epochs=self.epochs)

    def widest(self) -> TrainingConfig:
        """The widest network's `TrainingConfig` (`inherit`): `widest_training` (else `training`), `widest_epochs`."""
        return (self.widest_training or self.training).replace(epochs=self.widest_epochs)


def candidate_seed(seed: int, genome: Mapping[str, Any]) -> int:
    """The seed of one candidate's initialization and training: a hash of the run's seed and the genome."""
    text = json.dumps({"seed": int(seed), "genome": dict(genome)}, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


class _Evaluator:
    """Base: holds the space, data and build arguments; `prepare` once, then `evaluate` per genome."""

    #: What `prepare` does, for progress lines and `results.json` (None: nothing to prepare).
    preparation: Optional[str] = None
    #: Whether `evaluate` builds a new Keras model per genome (the tuner then clears Keras' session before
    #: each candidate, so that Keras' global state does not grow with them).
    builds_models: bool = True

    def __init__(self, space: BoundSpace, dataset, config: EvaluationConfig, *, run_dir: Path, verbose: int = 0,
                 strategy=None, seed: int = 0, log: Optional[Callable[[str], None]] = None):
        self.bound = space
        self.space = space.space
        self.dataset = dataset
        self.config = config
        self.quantizer = space.quantizer
        self.run_dir = Path(run_dir)
        self.verbose = verbose
        self.log = log  # receives the preparation's progress lines (the supernet's); None: quiet
        self.strategy = strategy or tf.distribute.get_strategy()
        self.seed = check_int("seed", seed)
        self._prepared: Optional[Dict[str, Any]] = None

    def build(self, genome) -> tf.keras.Model:
        with self.strategy.scope():
            return training.build_model(self.config.training, lambda: self.bound.build(genome))

    def prepare(self) -> Dict[str, Any]:
        """The one-off work before the first candidate, done once per run directory, under a lock.

        Returns:
            {"what": description or None, "seconds": this process's time, "trained": True if this
            process did the work, False if it loaded the result of an earlier or another process,
            "training_seconds": how long the work took in the process that did it, or None}.

        Raises:
            TimeoutError: if another process held the lock longer than `prepare_timeout`.
        """
        if self._prepared is None:
            began = time.perf_counter()
            trained = False
            record = self.run_dir / PREPARE_RECORD
            if self.preparation is not None:
                with io.exclusive_lock(self.run_dir / PREPARE_LOCK, timeout=self.config.prepare_timeout,
                                       purpose=self.preparation):
                    trained = self._prepare()
                    if trained:
                        io.write_json(record, {"what": self.preparation, "seconds": time.perf_counter() - began})
            seconds = time.perf_counter() - began
            done = json.loads(record.read_text())["seconds"] if record.exists() else None
            self._prepared = {"what": self.preparation, "seconds": seconds, "trained": trained,
                              "training_seconds": done}
        return dict(self._prepared)

    def _prepare(self) -> bool:
        """Does (or loads) the one-off work; returns True if this process did it."""
        return False

    def evaluate(self, genome, *, log_dir=None) -> Tuple[float, Optional[tf.keras.Model]]:
        """Returns (top-1 accuracy in percent on search-val, the evaluated model or None).

        The gradient functions TensorFlow registered for the candidate's graphs are released after it
        (`_released_custom_gradients`), so that evaluating many candidates in one process does not grow.
        """
        with _released_custom_gradients():
            return self._evaluate(genome, log_dir=log_dir)

    def _evaluate(self, genome, *, log_dir=None) -> Tuple[float, Optional[tf.keras.Model]]:
        raise NotImplementedError

    def model_for(self, genome) -> Optional[tf.keras.Model]:
        """The model `evaluate` scored, rebuilt without training when possible (one-shot); None otherwise."""
        return None

    def _train_and_score(self, model, config: TrainingConfig, seed: int, log_dir=None) -> float:
        training.fit(
            model, self.dataset.seeded("search_train", seed, config.batch_size), config,
            num_classes=self.dataset.num_classes, log_dir=log_dir, verbose=self.verbose,
        )
        return training.evaluate(model, self.dataset.scoring_pass("search_val"),
                                 num_classes=self.dataset.num_classes)["accuracy"]

    def _seeded(self, genome) -> int:
        """Seeds TensorFlow with the candidate seed of `genome` (its initialisation) and returns it (its data)."""
        seed = candidate_seed(self.seed, self.space.genome(genome))
        tf.keras.utils.set_random_seed(seed)
        return seed


class ScratchEvaluator(_Evaluator):
    """Trains every candidate from fresh weights."""

    def _evaluate(self, genome, *, log_dir=None):
        seed = self._seeded(genome)
        model = self.build(genome)
        return self._train_and_score(model, self.config.config(), seed, log_dir), model


class InheritEvaluator(_Evaluator):
    """Shen et al.: candidates start from the first channels of the widest network, trained once."""

    preparation = "trains the widest network"

    def _prepare(self) -> bool:
        directory = self.run_dir / "inherit" / "widest"
        if (directory / artifact.CARD_FILE).exists():
            with self.strategy.scope():
                self.widest, _ = artifact.load(directory)
            return False
        genome = self.space.costliest()
        seed = self._seeded(genome)
        self.widest = self.build(genome)
        accuracy = self._train_and_score(self.widest, self.config.widest(), seed)
        card = artifact.ModelCard(
            space=self.space.get_config(), genome=genome, quantizer=self.quantizer,
            input_shape=tuple(self.dataset.input_shape), num_classes=self.dataset.num_classes,
            metrics={"search_val_accuracy": accuracy}, dataset=self.dataset.name,
        )
        artifact.save(directory, self.widest, card)
        return True

    def _evaluate(self, genome, *, log_dir=None):
        seed = self._seeded(genome)
        model = self.build(genome)
        inherit_first_channels(model, self.widest)
        return self._train_and_score(model, self.config.config(), seed, log_dir), model


class OneshotEvaluator(_Evaluator):
    """Phan et al.: one weight-sharing supernet, trained once; candidates are evaluated inside it."""

    preparation = "trains the supernet"
    #: Candidates run in the supernet, whose traced functions live for the whole search: clearing Keras'
    #: session before each candidate would throw their compiled kernels away (the quickstart-sized groups
    #: recipe's one-shot candidate took 4.6 s instead of 0.7 s, all of it spent re-instantiating them).
    builds_models = False

    def _prepare(self) -> bool:
        self.recalibration = self._recalibration_batches()
        tf.keras.utils.set_random_seed(self.seed)
        self.supernet = Supernet(
            self.space, input_shape=self.dataset.input_shape, num_classes=self.dataset.num_classes,
            quantizer=self.quantizer, strategy=self.strategy)
        stats = self.supernet.train(
            self.dataset.seeded("search_train", self.seed),
            steps=self.config.supernet_steps,
            checkpoint_dir=self.run_dir / "supernet",
            sandwich=self.config.sandwich,
            distill=self.config.distill,
            seed=self.seed,
            log_every=max(1, self.config.supernet_steps // 10),  # ten progress lines: the longest stage of the run
            log=self.log,
        )
        return stats["trained_steps"] > 0

    def _recalibration_batches(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """The run directory's recalibration batches: read from `recalibration.npz`, or drawn once and saved.

        They are drawn from a pass of search_train keyed by the run's seed, and saved (atomically, mode
        0644) before any candidate uses them: the search's evaluator, the random search's (same
        directory) and a resumed run's recalibrate on the same bytes. Images are kept as uint8 when
        `exact_uint8` gives them back bit for bit (else float32), also those of a file saved as float32
        before; `_float_batches` converts them back where they are used. Labels are kept as drawn.
        """
        count = self.config.recalibration_batches
        path = self.run_dir / RECALIBRATION_FILE
        if not count:
            return []
        if path.exists():
            with np.load(path) as saved:
                if int(saved["count"]) == count:
                    return [(_compact(saved[f"x{i}"]), saved[f"y{i}"]) for i in range(count)]
        seed = training.derive_seed(self.seed, "recalibration")
        batches = [(_compact(x.numpy()), y.numpy())
                   for x, y in self.dataset.pipeline("search_train", seed=seed).take(count)]
        arrays = {"count": np.array(len(batches))}
        for index, (x, y) in enumerate(batches):
            arrays[f"x{index}"], arrays[f"y{index}"] = x, y
        buffer = _bytes_io.BytesIO()
        np.savez(buffer, **arrays)
        io.atomic_write_bytes(path, buffer.getbuffer())  # a view, not a second copy of the file's bytes
        return batches

    def _float_batches(self) -> _FloatBatches:
        """The recalibration batches as the models take them, converted one at a time as they are used."""
        return _FloatBatches(self.recalibration)

    def _evaluate(self, genome, *, log_dir=None):
        accuracy = self.supernet.evaluate(
            genome,
            self.dataset.search_val,
            recalibration_data=self._float_batches(),
            recalibrate=bool(self.recalibration),
        )
        return float(accuracy), None

    def model_for(self, genome) -> tf.keras.Model:
        """The extracted static model of `genome`, BatchNorm recalibrated on the run's batches, as evaluated."""
        model = self.supernet.extract(genome)
        if self.recalibration:
            recalibrate_batchnorm(model, self._float_batches())
        return model


def _compact(images: np.ndarray) -> np.ndarray:
    """`images` as uint8 pixels when the pipelines' conversion gives them back bit for bit, else unchanged."""
    pixels = exact_uint8(images)
    return images if pixels is None else pixels


class _FloatBatches:
    """Stored (images, labels) batches, yielded with uint8 images converted by `images_to_float`, one at a time.

    Only the batch in use exists as float32 (the stored ones stay uint8); iterable any number of times.
    """

    def __init__(self, batches: List[Tuple[np.ndarray, np.ndarray]]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Tuple[Any, np.ndarray]]:
        for images, labels in self.batches:
            yield (images_to_float(images) if images.dtype == np.uint8 else images), labels


@contextlib.contextmanager
def _released_custom_gradients():
    """Unregisters the `tf.custom_gradient` gradient functions registered inside the block, on leaving it.

    In a traced graph, `tf.custom_gradient` (larq's quantizers: about 30 per candidate) registers a
    gradient function under a new name ("CustomGradient-N") in TensorFlow's global gradient registry
    and never removes it; each one's closure holds its graph, so every candidate's traced training
    and layer graphs stayed alive (about 15 MiB per tiny candidate; `clear_session` does not touch
    the registry). The candidate's gradients are all taken while its step is traced, inside the block.
    """
    registry = getattr(getattr(_tf_ops, "_gradient_registry", None), "_registry", None)
    before = set(registry) if isinstance(registry, dict) else None
    try:
        yield
    finally:
        if before is not None:
            for name in [name for name in registry if name not in before and name.startswith("CustomGradient")]:
                del registry[name]


_EVALUATORS: Dict[str, Any] = {"scratch": ScratchEvaluator, "inherit": InheritEvaluator, "oneshot": OneshotEvaluator}


def make_evaluator(space: BoundSpace, dataset, config: EvaluationConfig, **kwargs) -> _Evaluator:
    """The evaluator of `config.mode` (see the module docstring) for the bound `space` (`space.bind(...)`)."""
    return _EVALUATORS[config.mode](space, dataset, config, **kwargs)
