"""Supernet training: Phan et al.'s Algorithm 2, the sandwich rule, checkpoints and resuming.

`train(supernet, ...)` runs `Supernet.train`: a random sub-genome every step
(or largest + smallest + random with the sandwich rule), Adam with a linear
decay, and a `tf.train.CheckpointManager` in the run directory. A
`supernet.json` card there records the space, input shape, classes and
quantizer, so a resumed run refuses a checkpoint of another supernet.
"""
from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from lqsearch import io
from lqsearch.checks import check_bool, check_int
from lqsearch.pixels import images_to_float
from lqsearch.training import build_optimizer

__all__ = ["train", "checkpoint_step", "standalone_optimizer", "CARD_NAME", "DEFAULT_LEARNING_RATE"]

CARD_NAME = "supernet.json"
DEFAULT_LEARNING_RATE = 1e-3
_STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


def standalone_optimizer(learning_rate: float, total_steps: int) -> tf.keras.optimizers.Optimizer:
    """Adam with the learning rate decayed linearly to 0 over `total_steps` (Phan et al.'s schedule)."""
    return tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.PolynomialDecay(learning_rate, total_steps, 0.0))


def _card(supernet) -> dict:
    """What identifies a supernet's weights: space, input shape, classes, quantizer."""
    return json.loads(json.dumps({
        "space": supernet.space.get_config(),
        "input_shape": list(supernet.input_shape),
        "num_classes": supernet.num_classes,
        "quantizer": supernet.quantizer,
    }))


def _check_card(supernet, checkpoint_dir: Path) -> None:
    """Raises ValueError if `checkpoint_dir` holds the card of another supernet."""
    path = checkpoint_dir / CARD_NAME
    if not path.exists():
        return
    saved, mine = json.loads(path.read_text()), _card(supernet)
    differing = sorted(key for key in mine if saved.get(key) != mine[key])
    if differing:
        raise ValueError(
            f"{checkpoint_dir} holds a supernet with another {', '.join(differing)} "
            f"({ {k: saved.get(k) for k in differing} }; this one has { {k: mine[k] for k in differing} }). "
            "Use another checkpoint_dir, or the same configuration."
        )


def checkpoint_step(supernet, checkpoint_dir: Path) -> Optional[int]:
    """The step count of the latest checkpoint in `checkpoint_dir`, or None if there is none.

    Raises:
        ValueError: if the directory holds a supernet of another configuration.
    """
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    if latest is None:
        return None
    _check_card(supernet, checkpoint_dir)
    return int(tf.train.load_checkpoint(latest).get_tensor(_STEP_KEY))


def model_input(images):
    """A batch's images as the models take them: uint8 pixels converted (`images_to_float`, here on the
    device, inside the traced step), float images cast to float32."""
    return images_to_float(images) if images.dtype == tf.uint8 else tf.cast(images, tf.float32)


def _check_train_args(steps, log_every, checkpoint_every, sandwich, distill) -> None:
    for name, value in (("steps", steps), ("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        check_int(name, value, minimum=1)
    check_bool("sandwich", sandwich)
    check_bool("distill", distill)
    if distill and not sandwich:
        raise ValueError("distill=True distills from the largest sub-network of the sandwich; set sandwich=True.")


def _resume_pipeline(data, start_step: int, steps: int) -> tf.data.Dataset:
    """The batches of steps `start_step` .. `steps - 1`, as one `tf.data` pipeline.

    `data` is an `lqsearch.training.EpochData` (`dataset.seeded(split, seed)`): step s draws batch
    s mod B of pass s // B (B batches a pass), so a resumed run gets the batches an uninterrupted
    one got. A plain `tf.data` pipeline is repeated, skipping the batches of the current epoch
    already seen.
    """
    if not isinstance(data, tf.data.Dataset):
        first, skip = divmod(start_step, data.num_batches)
        return data.passes(first, -(-steps // data.num_batches) - first).skip(skip)
    cardinality = int(data.cardinality())
    stream = data.repeat()
    if cardinality > 0 and start_step % cardinality:
        stream = stream.skip(start_step % cardinality)
    return stream


def _resume_iterator(data, start_step: int, steps: int):
    """An iterator over `_resume_pipeline`'s batches."""
    return iter(_resume_pipeline(data, start_step, steps))


def distribute(strategy: tf.distribute.Strategy, pipeline: tf.data.Dataset):
    """`pipeline`'s global batches, each split over `strategy`'s replicas (an iterator).

    Under `MultiWorkerMirroredStrategy` every worker builds the same pipeline (seeded data), and
    auto-sharding is DATA: each worker keeps its replicas' slices of every global batch, so the
    workers together train on the batches one process would. (The default, AUTO, falls back to
    DATA for in-memory data with a warning; FILE sharding would give workers different batches.)
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(strategy.experimental_distribute_dataset(pipeline.with_options(options)))


def _step_genomes(supernet, rng: np.random.Generator, sandwich: bool) -> list:
    """The sub-genomes of one step: one random one, or largest + smallest + random (sandwich)."""
    if not sandwich:
        return [supernet.sample_genome(rng)]
    return [supernet.space.costliest(), supernet.space.cheapest(), supernet.sample_genome(rng)]


def make_step(supernet, optimizer, distill: bool, batch_spec, genomes_per_step: int):
    """The training step: one `strategy.run` per global batch, traced once.

    `step(images, labels, configs)` trains on the mean gradient of the sub-genomes whose rows
    (`Supernet.config_rows`) `configs` stacks; if distilling, the first teaches the others. Each
    replica assigns the active configuration to its own copy (no cross-replica traffic), computes
    its loss on its slice scaled by its share of the global batch, and the optimizer sums the
    replicas' gradients: the update is the global batch's mean gradient. On one device the share is
    exactly 1, so the numbers are those of an undistributed step. `batch_spec` is the distributed
    iterator's `element_spec`: a last, smaller batch does not retrace.

    Returns:
        The traced step; it returns the global batch's mean loss over the sub-networks, as a tensor
        (reading it waits for the device: the training loop reads a whole log interval at once).
    """
    strategy, variables = supernet.strategy, supernet.model.trainable_variables

    def replica_step(images, labels, configs):
        images, labels = model_input(images), tf.cast(labels, tf.int32)
        local = tf.cast(tf.shape(images)[0], tf.float32)
        share = local / tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
        no_targets = tf.fill(tf.stack([tf.shape(images)[0], supernet.num_classes]), 0.0)
        targets, total, losses = no_targets, None, []
        for index in range(configs.shape[0]):
            supernet._assign_active_config(configs[index])
            student = distill and index > 0
            loss, logits, grads = supernet._compute_gradients(
                images, labels, targets if student else no_targets, tf.constant(1.0 if student else 0.0), share)
            if distill and index == 0:
                targets = tf.nn.softmax(logits)
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
            losses.append(loss)
        optimizer.apply_gradients(zip(total if len(losses) == 1 else [g / len(losses) for g in total], variables))
        return losses[0] if len(losses) == 1 else tf.add_n(losses) / len(losses)

    def step(images, labels, configs):
        per_replica = strategy.run(replica_step, args=(images, labels, configs))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    configs = tf.TensorSpec([genomes_per_step, len(supernet.config_rows(supernet.space.costliest())), 2], tf.int32)
    return tf.function(step, input_signature=[*batch_spec, configs], autograph=False)


def _restore(supernet, path: Optional[str], step: tf.Variable, optimizer) -> None:
    """Restores the weights and the step count strictly, and the optimizer state where it matches.

    The optimizer may differ from the checkpointed one (another learning-rate schedule);
    its moments and step counter are restored when their structure matches.
    """
    if path is None:
        return
    weights = tf.train.Checkpoint(model=supernet.model, step=step)
    weights.restore(path).expect_partial().assert_existing_objects_matched()
    build_optimizer(optimizer, supernet.model.trainable_variables, supernet.strategy)
    tf.train.Checkpoint(optimizer=optimizer).restore(path).expect_partial()


def train(supernet, pipeline, *, steps: int, checkpoint_dir: Path, optimizer=None,
          sandwich: bool = False, distill: bool = False, seed: int = 0, log_every: int = 100,
          checkpoint_every: int = 200, log: Optional[Callable[[str], None]] = None) -> dict:
    """Trains `supernet`; see `Supernet.train` for the arguments and the returned stats."""
    _check_train_args(steps, log_every, checkpoint_every, sandwich, distill)
    io.make_dirs(checkpoint_dir)
    _check_card(supernet, checkpoint_dir)
    io.write_json(checkpoint_dir / CARD_NAME, _card(supernet))
    if optimizer is None:
        with supernet.strategy.scope():  # its step counter lives where the weights do
            optimizer = standalone_optimizer(DEFAULT_LEARNING_RATE, steps)
    # before restoring and tracing: one trace, not two
    build_optimizer(optimizer, supernet.model.trainable_variables, supernet.strategy)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=supernet.model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=2)
    _restore(supernet, manager.latest_checkpoint, step, optimizer)
    start = int(step.numpy())
    stats = {"steps": steps, "start_step": start, "trained_steps": max(0, steps - start), "skipped": start >= steps}
    if start >= steps:
        supernet.set_genome(supernet.space.costliest())  # the checkpoint holds its last step's sub-genome
        return {**stats, "seconds": 0.0, "seconds_per_step": None, "loss_history": [], "final_loss": None}
    batches = distribute(supernet.strategy, _resume_pipeline(pipeline, start, steps))
    genomes_per_step = 3 if sandwich else 1
    key = (id(optimizer), distill, genomes_per_step, repr(batches.element_spec))  # traced once per setting
    if key not in supernet.train_steps:  # (the optimizer is kept with its step: its id stays its own)
        step_function = make_step(supernet, optimizer, distill, batches.element_spec, genomes_per_step)
        supernet.train_steps[key] = (optimizer, step_function)
    train_step = supernet.train_steps[key][1]
    history, window, began = [], [], time.perf_counter()
    for current in range(start, steps):
        images, labels = next(batches)
        genomes = _step_genomes(supernet, np.random.default_rng([seed, current]), sandwich)  # on the host
        window.append(train_step(images, labels, tf.constant([supernet.config_rows(g) for g in genomes], tf.int32)))
        step.assign(current + 1)
        if (current + 1) % log_every == 0 or current + 1 == steps:
            history.append([current + 1, float(tf.reduce_mean(tf.stack(window)))])  # the interval's one host sync
            window = []
            if log is not None:
                per_step = (time.perf_counter() - began) / (current + 1 - start)
                eta = datetime.timedelta(seconds=round(per_step * (steps - current - 1)))
                log(f"supernet step {current + 1}/{steps}: loss {history[-1][1]:.4f}, {per_step:.3f} s/step, ETA {eta}")
        if (current + 1) % checkpoint_every == 0 or current + 1 == steps:
            manager.save(checkpoint_number=current + 1)
    seconds = time.perf_counter() - began
    supernet.set_genome(supernet.space.costliest())
    return {**stats, "seconds": seconds, "seconds_per_step": seconds / (steps - start),
            "loss_history": history, "final_loss": history[-1][1]}
