"""Training: the papers' schedules as named presets, optimizers, compile/fit/evaluate.

Presets (every field can be overridden with `TrainingConfig.replace(...)` or a recipe):

| preset          | optimizer          | lr    | schedule                              | epochs | batch |
|-----------------|--------------------|-------|---------------------------------------|--------|-------|
| `shen_cifar`    | SGD, momentum 0.9  | 0.1   | x0.1 at epochs 60 / 120 / 180         | 200    | 128   |
| `shen_imagenet` | SGD, momentum 0.9  | 0.1   | x0.1 at epochs 50 / 100 / 135         | 150    | 256   |
| `phan_imagenet` | Adam               | 1e-3  | linear decay to 0                     | 256    | 512   |
| `cpu`           | Adam               | 2e-3  | linear decay to 0                     | 2      | 128   |

`fit` trains on an `EpochData` (e.g. `lqsearch.data.Dataset.seeded(split, seed)`): epoch e's
batches are a function of (seed, e) only, also when Keras' `BackupAndRestore` resumes a killed
training at epoch e (`fit(..., backup_dir=...)`), so a training does not depend on what the
process did before it. A plain `tf.data.Dataset` is trained on as given. Batches of uint8
images (the seeded passes) are converted on the device, inside the compiled step
(`lqsearch.pixels.float_input`); the model itself takes float images in [0, 1].

A loss that becomes NaN raises `CandidateFailed`, so the search records a failed
trial with its reason and goes on. `fit` and `evaluate` drop TensorFlow's "triggered
tf.function retracing" warning when it only counts new models each tracing their own
step once (see `lqsearch._retracing`); a model that retraces its own step still warns.

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378 (the `shen_*` schedules).
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (`phan_imagenet`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Dict, Literal, Mapping, Optional, Protocol, Sequence, Tuple, Union

import larq as lq
import tensorflow as tf
from pydantic import Field, StrictInt, field_validator, model_validator
from tensorflow.python.framework import config as _tf_config

from lqsearch._retracing import quiet_new_model_traces
from lqsearch.checks import check_int, did_you_mean
from lqsearch.config import Config
from lqsearch.errors import CandidateFailed
from lqsearch.pixels import float_input, is_pixels

__all__ = [
    "TrainingConfig",
    "EpochData",
    "CandidateFailed",
    "PRESETS",
    "preset",
    "make_optimizer",
    "learning_rate_schedule",
    "compile_model",
    "build_optimizer",
    "fit",
    "evaluate",
    "get_strategy",
    "seed_everything",
    "deterministic_default",
    "derive_seed",
]

OPTIMIZERS = ("adam", "sgd", "bop")  # TrainingConfig.optimizer's values
#: Above this many classes, models also report top-5 accuracy.
TOP5_ABOVE_CLASSES = 10
SCHEDULES = ("constant", "step", "linear", "cosine")  # TrainingConfig.schedule's values


#: The last finished epoch in a Keras `BackupAndRestore` checkpoint (`<backup_dir>/chief`).
_BACKED_UP_EPOCH = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"


#: Each preset's values (what differs from TrainingConfig's defaults is what the preset is).
_PRESET_VALUES: Dict[str, Dict[str, Any]] = {
    "shen_cifar": dict(epochs=200, optimizer="sgd", learning_rate=0.1, schedule="step", milestones=(60, 120, 180),
                       batch_size=128),
    "shen_imagenet": dict(epochs=150, optimizer="sgd", learning_rate=0.1, schedule="step", milestones=(50, 100, 135),
                          batch_size=256),
    "phan_imagenet": dict(epochs=256, optimizer="adam", learning_rate=1e-3, schedule="linear", batch_size=512),
    "cpu": dict(epochs=2, optimizer="adam", learning_rate=2e-3, schedule="linear", batch_size=128),
}


class TrainingConfig(Config):
    """How to train one model.

    Attributes:
        preset: the schedule preset these settings start from (see the module docstring): its
            values are taken and the other keys given override them (as in a recipe's
            `training:` section); a key given as None (null) keeps the preset's value.
        epochs: passes over the training pipeline.
        optimizer: `adam`, `sgd` (momentum) or `bop` (larq's Bop for binary weights,
            Adam for the others).
        learning_rate: the initial learning rate (of the float optimizer for `bop`).
        schedule: `constant`, `step` (x `decay_factor` at each of `milestones`, in
            epochs), `linear` (to 0 at the end) or `cosine`.
        milestones: epochs at which the `step` schedule decays; each must be below `epochs` (a milestone
            never reached would silently keep the higher rate, so it is refused).
        decay_factor: the `step` schedule's factor.
        momentum: SGD momentum.
        batch_size: examples per step (the data pipeline is built with it).
        steps_per_epoch: optional cap on steps per epoch (None: the whole pipeline).
        bop_threshold, bop_gamma: Bop's hyperparameters.
        mixed_precision: build and train in Keras' mixed precision (`mixed_float16` on a GPU,
            `mixed_bfloat16` on a CPU): float32 variables, 16-bit compute, float32 logits.
            Models are built under it with `build_model(config, build)`.

    Raises:
        ConfigError: on an unknown preset or setting, or a value out of range.
    """

    preset: str = "cpu"
    epochs: int = Field(2, ge=0)
    optimizer: Literal[OPTIMIZERS] = "adam"
    learning_rate: float = Field(2e-3, gt=0)
    schedule: Literal[SCHEDULES] = "linear"
    milestones: Tuple[StrictInt, ...] = Field((), strict=False)
    decay_factor: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, le=1)
    batch_size: int = Field(128, ge=1)
    steps_per_epoch: Optional[int] = Field(None, ge=1)
    bop_threshold: float = Field(1e-8, gt=0)
    bop_gamma: float = Field(1e-4, gt=0)
    mixed_precision: bool = False

    @model_validator(mode="before")
    @classmethod
    def _start_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        name = data.get("preset", "cpu")
        if name not in _PRESET_VALUES:
            names = sorted(_PRESET_VALUES)
            raise ValueError(f"Unknown training preset {name!r}; valid presets are {', '.join(names)}."
                             f"{did_you_mean(name, names)}")
        given = {key: value for key, value in data.items() if value is not None}
        return {**_PRESET_VALUES[name], **given}

    @field_validator("milestones")
    @classmethod
    def _positive_milestones(cls, milestones: Tuple[int, ...]) -> Tuple[int, ...]:
        if any(m < 1 for m in milestones):
            raise ValueError(f"milestones must be epochs >= 1, got {list(milestones)}. Fix: e.g. milestones=[60, 120].")
        return milestones

    @model_validator(mode="after")
    def _milestones_reached(self):
        # A milestone at or beyond `epochs` is never reached (the step schedule decays from the first step of
        # epoch m, counting from 0), so it would silently keep the higher rate: refused, with the fixes.
        unreached = [m for m in self.milestones if m >= self.epochs]
        if self.schedule == "step" and self.epochs > 0 and unreached:
            below = sorted({max(1, round(m * self.epochs / (max(self.milestones) + 1))) for m in self.milestones})
            raise ValueError(
                f"step milestones {list(self.milestones)} are epochs, and training for epochs={self.epochs} never "
                f"reaches {unreached}: the learning rate would silently stay at {self.learning_rate:g} there. Fix: "
                f"schedule=cosine (or linear), which decays over the {self.epochs} epochs, or milestones below "
                f"{self.epochs} (e.g. {below}), or more epochs.")
        return self


#: The presets, each a TrainingConfig built from `_PRESET_VALUES`.
PRESETS: Dict[str, TrainingConfig] = {name: TrainingConfig(preset=name) for name in _PRESET_VALUES}


def preset(name: str, **overrides: Any) -> TrainingConfig:
    """The named schedule preset, with `overrides` applied.

    Raises:
        ValueError: on an unknown preset (listing the valid ones) or setting.
    """
    return TrainingConfig(preset=name, **overrides)


def learning_rate_schedule(config: TrainingConfig, steps_per_epoch: int):
    """The learning rate (a float or a Keras schedule) of `config` for `steps_per_epoch`."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "constant":
        return config.learning_rate
    if config.schedule == "step":
        # PiecewiseConstantDecay keeps values[i] while step <= boundaries[i]: decay from the
        # first step of epoch `m` on (step m * steps_per_epoch, counting from 0).
        boundaries = [m * steps_per_epoch - 1 for m in config.milestones]
        values = [config.learning_rate * config.decay_factor**i for i in range(len(boundaries) + 1)]
        if not boundaries:
            return config.learning_rate
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if config.schedule == "linear":
        return tf.keras.optimizers.schedules.PolynomialDecay(config.learning_rate, total, end_learning_rate=0.0,
                                                             power=1.0)
    return tf.keras.optimizers.schedules.CosineDecay(config.learning_rate, total)


def make_optimizer(config: TrainingConfig, steps_per_epoch: int):
    """Builds the optimizer and learning-rate schedule of `config`."""
    lr = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return tf.keras.optimizers.SGD(lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return tf.keras.optimizers.Adam(lr)
    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable,
         lq.optimizers.Bop(threshold=config.bop_threshold, gamma=config.bop_gamma)),
        default_optimizer=tf.keras.optimizers.legacy.Adam(lr),
    )


def compile_model(model: tf.keras.Model, config: TrainingConfig, steps_per_epoch: int, num_classes: int,
                  optimizer: Optional[tf.keras.optimizers.Optimizer] = None) -> None:
    """Compiles `model` (logits out) with sparse cross-entropy, top-1 and, above 10 classes, top-5.

    The optimizer is `config`'s (`make_optimizer`), or `optimizer` when given.
    """
    with model.distribute_strategy.scope():  # metrics and optimizer live where the model's variables do
        metrics = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if num_classes > TOP5_ABOVE_CLASSES:
            metrics.append(tf.keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"))
        model.compile(
            optimizer=optimizer or make_optimizer(config, steps_per_epoch),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=metrics,
        )
    build_optimizer(model.optimizer, model.trainable_variables, model.distribute_strategy)


def precision_policy(config: TrainingConfig) -> str:
    """The Keras dtype policy `config` trains in: `float32`, or `mixed_float16` (GPU) / `mixed_bfloat16` (CPU)."""
    if not config.mixed_precision:
        return "float32"
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def build_model(config: TrainingConfig, build) -> tf.keras.Model:
    """`build()` under `config`'s precision policy (restored afterwards); mixed models get float32 logits.

    Keras layers take the global dtype policy when they are created, so the model is built
    inside it. The logits are cast to float32 (a weightless layer) so the loss and softmax stay
    in full precision, as Keras' mixed-precision guide advises; the weights are unchanged.
    """
    policy = precision_policy(config)
    if policy == "float32":
        return build()
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        model = build()
        logits = tf.keras.layers.Activation("linear", dtype="float32", name="float32_logits")(model.output)
        return tf.keras.Model(model.inputs, logits, name=model.name)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def build_optimizer(optimizer, variables, strategy: Optional[tf.distribute.Strategy] = None) -> None:
    """Creates `optimizer`'s slot variables now, for `variables`, so that the first training step traces once.

    A Keras optimizer otherwise creates them inside the first traced step, and `tf.function` then
    traces that step twice (once to create variables, once without); `bench/bench_speed.py --only
    firststep` times a new model's first step both ways. Optimizers without `build(var_list)` (larq's `CaseOptimizer`
    for Bop, which wraps a legacy Adam) are left to create their variables as before.
    """
    if not isinstance(optimizer, tf.keras.optimizers.Optimizer):
        return
    with (strategy or tf.distribute.get_strategy()).scope():
        optimizer.build(list(variables))


def steps_in(pipeline: tf.data.Dataset, config: TrainingConfig) -> int:
    """Steps per epoch: the pipeline's length, capped by `config.steps_per_epoch`."""
    length = int(pipeline.cardinality().numpy())
    if length < 0:
        if config.steps_per_epoch is None:
            raise ValueError("The training pipeline has unknown length; set steps_per_epoch.")
        return config.steps_per_epoch
    return min(length, config.steps_per_epoch or length)


class EpochData(Protocol):
    """Training data whose epoch e is a function of its seed and e (`lqsearch.data.Dataset.seeded`)."""

    num_batches: int

    def passes(self, first_epoch: int, epochs: int, steps: Optional[int] = None) -> tf.data.Dataset:
        """The batches of epochs `first_epoch` .. `first_epoch + epochs - 1` (each cut to `steps`), in one pipeline."""


def fit(
    model: tf.keras.Model,
    train: Union[EpochData, tf.data.Dataset],
    config: TrainingConfig,
    *,
    num_classes: int,
    validation: Optional[tf.data.Dataset] = None,
    log_dir: Optional[os.PathLike] = None,
    verbose: int = 0,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    backup_dir: Optional[os.PathLike] = None,
) -> tf.keras.callbacks.History:
    """Compiles and trains `model` for `config.epochs`.

    Arguments:
        model: a Keras model returning logits (build it inside the strategy's scope).
        train: an `EpochData` (epoch e's batches from its seed and e: the same whatever ran before,
            and after a resume), or a batched (image, label) `tf.data.Dataset` trained on as given.
        config: the `TrainingConfig`.
        num_classes: used to decide on top-5.
        validation: optional pipeline evaluated after each epoch.
        log_dir: TensorBoard logs go there when given.
        verbose: Keras progress output (0 quiet, 1 bar, 2 one line per epoch).
        callbacks: extra Keras callbacks.
        backup_dir: back the training up there after every epoch (Keras `BackupAndRestore`) and resume
            from it; with an `EpochData`, the resumed epochs get the batches they would have had.

    Returns:
        The Keras `History` (of the epochs this call trained).

    Raises:
        CandidateFailed: if the loss becomes NaN or infinite.
    """
    if isinstance(train, tf.data.Dataset):
        steps, first = steps_in(train, config), 0
        data = train.repeat() if config.steps_per_epoch else train
        given_steps = steps if config.steps_per_epoch else None
    else:
        steps = min(train.num_batches, config.steps_per_epoch or train.num_batches)
        first = min(_backed_up_epochs(backup_dir), config.epochs) if backup_dir is not None else 0
        data, given_steps = train.passes(first, config.epochs - first, steps), steps
    if validation is not None and is_pixels(validation) != is_pixels(data):
        raise ValueError("fit: the training batches and the validation batches hold images of different dtypes; "
                         "give both as uint8 pixels (converted on the device) or both as float images in [0, 1].")
    compile_model(model, config, steps, num_classes)
    if is_pixels(data):  # trains `model`'s weights with `model.optimizer`, the images converted on the device
        optimizer, model = model.optimizer, float_input(model)
        compile_model(model, config, steps, num_classes, optimizer=optimizer)
    all_callbacks = [tf.keras.callbacks.TerminateOnNaN(), *callbacks]
    if backup_dir is not None:
        all_callbacks.insert(0, tf.keras.callbacks.BackupAndRestore(str(backup_dir)))
    if not isinstance(train, tf.data.Dataset):
        all_callbacks.append(_SameEpochs(first))
    if log_dir is not None:
        # write_graph=False: writing the traced training graph slowed the first batch of every
        # training of MobileNet M3 (Keras warned "on_train_batch_end is slow"); scalars are what runs compare.
        all_callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=str(log_dir), profile_batch=0, write_graph=False))
    if config.epochs == 0:
        return tf.keras.callbacks.History()
    with quiet_new_model_traces(model):
        history = model.fit(
            data,
            epochs=config.epochs,
            steps_per_epoch=given_steps,
            validation_data=validation,
            callbacks=all_callbacks,
            verbose=verbose,
        )
    losses = history.history.get("loss", [])
    if (not losses and first < config.epochs) or any(not math.isfinite(l) for l in losses):
        raise CandidateFailed(f"training loss became NaN or infinite (loss per epoch: {losses})")
    return history


def _backed_up_epochs(backup_dir: os.PathLike) -> int:
    """How many epochs the Keras `BackupAndRestore` checkpoint in `backup_dir` holds (0 without one)."""
    latest = tf.train.latest_checkpoint(os.path.join(os.fspath(backup_dir), "chief"))
    if latest is None:
        return 0
    return int(tf.train.load_checkpoint(latest).get_tensor(_BACKED_UP_EPOCH)) + 1


class _SameEpochs(tf.keras.callbacks.Callback):
    """Checks that Keras trains the epochs whose batches `fit` gave it (first, first + 1, ...).

    Raises:
        RuntimeError: at the start of an epoch that is not the next one of the data (a resume that
            Keras and `fit` read differently): its batches would be another epoch's.
    """

    def __init__(self, first: int):
        super().__init__()
        self.expected = first

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.expected:
            raise RuntimeError(f"Keras starts epoch {epoch} but the data given to fit is at epoch {self.expected}; "
                               "resume a training only through fit(..., backup_dir=).")
        self.expected += 1


def evaluate(model: tf.keras.Model, pipeline: tf.data.Dataset, *, num_classes: int,
             verbose: int = 0) -> Dict[str, float]:
    """Top-1 (and above 10 classes top-5) accuracy of `model` on `pipeline`, in percent.

    Compiles the model (without an optimizer) when it is not compiled yet. A pipeline of uint8
    images is converted on the device, as in `fit`.
    """
    model = float_input(model) if is_pixels(pipeline) else model
    if not getattr(model, "_is_compiled", False):
        compile_model(model, TrainingConfig(epochs=0), 1, num_classes)
    with quiet_new_model_traces(model):
        values = model.evaluate(pipeline, verbose=verbose, return_dict=True)
    loss = values.get("loss", float("nan"))
    if not math.isfinite(loss):
        raise CandidateFailed(f"evaluation loss is {loss}")
    result = {"accuracy": 100.0 * float(values["accuracy"]), "loss": float(loss)}
    if "top5" in values:
        result["top5"] = 100.0 * float(values["top5"])
    return result


#: `Recipe.strategy`'s values.
STRATEGIES = ("default", "mirrored", "multi_worker")


def get_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named `name`.

    Arguments:
        name: `default` (one device), `mirrored` (`MirroredStrategy`: data-parallel over the local
            GPUs, or the logical devices of the CPU) or `multi_worker` (`MultiWorkerMirroredStrategy`,
            configured from the `TF_CONFIG` environment variable; one local worker without it).

    Raises:
        ValueError: on another name.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown distribution strategy {name!r}; valid strategies are {', '.join(STRATEGIES)}.")


def deterministic_default() -> bool:
    """Whether a run is deterministic when its recipe does not say: on the CPU yes, on a GPU no (`seed_everything`)."""
    return not tf.config.list_physical_devices("GPU")


def derive_seed(*parts: Any) -> int:
    """A seed in [0, 2**31) from `parts` (JSON-serializable: ints, strings, mappings): a hash, so that
    nearby inputs give unrelated seeds (e.g. `derive_seed(run_seed, "recalibration")`)."""
    text = json.dumps(list(parts), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def seed_everything(seed: int, deterministic: Optional[bool] = None) -> bool:
    """Seeds Python's `random`, NumPy and TensorFlow, and switches TensorFlow's op determinism on or off.

    Deterministic, the same run with the same seed gives the same numbers
    (`tf.config.experimental.enable_op_determinism`: every op and every tf.data pipeline picks
    a deterministic implementation). On the CPU this costs little. On a GPU it costs speed: cuDNN's
    deterministic convolution and pooling algorithms are slower, and ops with no deterministic GPU
    kernel (e.g. some scatter and segment reductions, `tf.image.resize` gradients) raise
    `UnimplementedError` instead of running. The setting is process-wide, so it is set both ways here.

    Arguments:
        seed: the seed (an integer >= 0).
        deterministic: True or False; None: `deterministic_default()` (on on the CPU, off on a GPU).

    Returns:
        Whether op determinism is now on.

    Raises:
        ValueError: if `seed` is not an integer >= 0.
    """
    tf.keras.utils.set_random_seed(check_int("seed", seed, minimum=0))
    on = deterministic_default() if deterministic is None else bool(deterministic)
    if on:
        tf.config.experimental.enable_op_determinism()
    else:
        _tf_config.disable_op_determinism()  # TF 2.15 has no public switch-off
    return on
