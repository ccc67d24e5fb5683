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


def _check_train_args(steps, log_every, checkpoint_every, sandwich, distill) -> None:
    for name, value in (("steps", steps), ("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        check_int(name, value, minimum=1)
    check_bool("sandwich", sandwich)
    check_bool("distill", distill)
    if distill and not sandwich:
        raise ValueError("distill=True distills from the largest sub-network of the sandwich; set sandwich=True.")


def _resume_iterator(data, start_step: int, steps: int):
    """Iterator over the batches of steps `start_step` .. `steps - 1`.

    `data` is an `lqsearch.training.EpochData` (`dataset.seeded(split, seed)`): step s draws batch
    s mod B of pass s // B (B batches a pass), so a resumed run gets the batches an uninterrupted
    one got. A plain `tf.data` pipeline is repeated, skipping the batches of the current epoch
    already seen.
    """
    if not isinstance(data, tf.data.Dataset):
        first, skip = divmod(start_step, data.num_batches)
        return iter(data.passes(first, -(-steps // data.num_batches) - first).skip(skip))
    cardinality = int(data.cardinality())
    stream = data.repeat()
    if cardinality > 0 and start_step % cardinality:
        stream = stream.skip(start_step % cardinality)
    return iter(stream)


def _step_genomes(supernet, rng: np.random.Generator, sandwich: bool) -> list:
    """The sub-genomes of one step: one random one, or largest + smallest + random (sandwich)."""
    if not sandwich:
        return [supernet.sample_genome(rng)]
    return [supernet.space.costliest(), supernet.space.cheapest(), supernet.sample_genome(rng)]


def _optimizer_step(supernet, images, labels, genomes, distill: bool, apply) -> tf.Tensor:
    """One optimizer step on the mean gradient of `genomes`; the first teaches the others if distilling.

    Returns:
        The mean loss of the sub-networks, as a tensor: reading it waits for the device, so the
        training loop reads the losses of a whole log interval at once (one host sync per interval).
    """
    no_targets = tf.fill(tf.stack([tf.shape(images)[0], supernet.num_classes]), 0.0)  # no shape read on the host
    targets, total, losses = no_targets, None, []
    for index, genome in enumerate(genomes):
        supernet.set_genome(genome)
        student = distill and index > 0
        loss, logits, grads = supernet.gradients(
            images, labels, targets if student else no_targets, tf.constant(1.0 if student else 0.0)
        )
        if distill and index == 0:
            targets = tf.nn.softmax(logits)
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
        losses.append(loss)
    apply(total if len(genomes) == 1 else [g / len(genomes) for g in total])
    return losses[0] if len(losses) == 1 else tf.add_n(losses) / len(losses)


def _restore(supernet, path: Optional[str], step: tf.Variable, optimizer) -> None:
    """Restores the weights and the step count strictly, and the optimizer state where it matches.

    The optimizer may differ from the checkpointed one (another learning-rate schedule);
    its moments and step counter are restored when their structure matches.
    """
    if path is None:
        return
    weights = tf.train.Checkpoint(model=supernet.model, step=step)
    weights.restore(path).expect_partial().assert_existing_objects_matched()
    optimizer.build(supernet.model.trainable_variables)
    tf.train.Checkpoint(optimizer=optimizer).restore(path).expect_partial()


def train(supernet, pipeline, *, steps: int, checkpoint_dir: Path, optimizer=None,
          sandwich: bool = False, distill: bool = False, seed: int = 0, log_every: int = 100,
          checkpoint_every: int = 200, log: Optional[Callable[[str], None]] = None) -> dict:
    """Trains `supernet`; see `Supernet.train` for the arguments and the returned stats."""
    _check_train_args(steps, log_every, checkpoint_every, sandwich, distill)
    io.make_dirs(checkpoint_dir)
    _check_card(supernet, checkpoint_dir)
    io.write_json(checkpoint_dir / CARD_NAME, _card(supernet))
    optimizer = optimizer or standalone_optimizer(DEFAULT_LEARNING_RATE, steps)
    build_optimizer(optimizer, supernet.model.trainable_variables)  # before restoring and tracing: one trace, not two
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=supernet.model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=2)
    _restore(supernet, manager.latest_checkpoint, step, optimizer)
    start = int(step.numpy())
    stats = {"steps": steps, "start_step": start, "trained_steps": max(0, steps - start), "skipped": start >= steps}
    if start >= steps:
        return {**stats, "seconds": 0.0, "seconds_per_step": None, "loss_history": [], "final_loss": None}
    variables = supernet.model.trainable_variables
    apply = tf.function(lambda grads: optimizer.apply_gradients(zip(grads, variables)))
    batches = _resume_iterator(pipeline, start, steps)
    history, window, began = [], [], time.perf_counter()
    for current in range(start, steps):
        images, labels = next(batches)
        genomes = _step_genomes(supernet, np.random.default_rng([seed, current]), sandwich)
        window.append(_optimizer_step(supernet, tf.cast(images, tf.float32), tf.cast(labels, tf.int32),
                                      genomes, distill, apply))
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
