"""`recipe plan`'s probe: a few training, evaluation and supernet steps timed on this device, nothing saved."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf

from lqsearch import training
from lqsearch.supernet import Supernet
from lqsearch.supernet import training as supernet_training

__all__ = ["Probe"]

#: Steps the probe times per genome, one by one: a step's time is the FASTEST of them (wall clock), so that a
#: probe on a shared machine is not slowed by what else runs there at that moment (the mean of wall-clock
#: probes on 2 shared cores moved a projection by 2x with the load; CPU time counts both cores of a step that
#: uses two, and projected the width recipe's study at twice its measured time).
PROBE_STEPS = 8
#: The probe's largest batch: the recipe's batch up to this (a small model's step has a fixed cost that a
#: smaller probe batch, scaled up linearly, would count again per image).
PROBE_BATCH = 256
#: The probe keeps one step under about this many MACs (its batch shrinks; times are scaled back up).
PROBE_MACS_PER_STEP = 1e10


class _StepClock(tf.keras.callbacks.Callback):
    """Wall seconds of each training or evaluation batch; `fastest()` is the shortest (the least disturbed)."""

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []
        self._began = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._began)

    on_test_batch_begin = on_train_batch_begin
    on_test_batch_end = on_train_batch_end

    def fastest(self) -> float:
        return min(self.seconds)


class Probe:
    """Times a few training and evaluation steps on this device (synthetic images, nothing saved)."""

    def __init__(self, space, quantizer, shape, classes, recipe, macs, imagenet_format, dataset=None):
        self.recipe, self.macs, self.shape, self.classes = recipe, macs, shape, classes
        self.bound = space.bind(input_shape=shape, num_classes=classes, quantizer=quantizer)
        self.batch = int(max(2, min(recipe.data.batch_size, PROBE_BATCH,
                                    PROBE_MACS_PER_STEP // max(macs["reference"], 1))))
        self.points: Dict[float, Dict[str, float]] = {}
        self.activation_bytes = 0.0
        # The cheapest genome too: small networks are not proportionally faster (a step has a floor).
        genomes = [("cheapest", space.cheapest()), ("reference", space.reference_genome())]
        if macs["costliest"] * self.batch <= PROBE_MACS_PER_STEP and space.costliest() != space.reference_genome():
            genomes.append(("costliest", space.costliest()))  # (group spaces: the reference is the costliest)
        self.supernet_step, self.supernet_batch = None, self.batch
        self.oneshot_fixed = self.oneshot_batch = 0.0  # one-shot recipes only: see `_time_oneshot`
        started = time.perf_counter()
        self._time(space.cheapest())  # warm-up: the process's one-off start (oneDNN, tf.data) is no per-model cost
        for name, genome in genomes:
            self.points[macs[name]] = self._time(genome)
        if recipe.evaluation.mode == "oneshot":
            supernet, self.supernet_step = self._time_supernet()
            self._time_oneshot(supernet)
        self.decode_seconds = _jpeg_decode_seconds() if imagenet_format else 0.0
        self.pipeline_seconds = _pipeline_seconds(dataset, recipe.data.batch_size) if dataset is not None else 0.0
        self.seconds = time.perf_counter() - started
        self.probed = [name for name, _ in genomes]

    def _time(self, genome) -> Dict[str, float]:
        """Wall seconds of `genome`'s first step (build, compile, tracing), a step, and the same for evaluation."""
        clock = time.perf_counter
        began = clock()
        model = self.bound.build(genome)
        config = training.TrainingConfig(epochs=1, steps_per_epoch=1, batch_size=self.batch)
        training.compile_model(model, config, 1, self.classes)
        x = tf.random.uniform((self.batch, *self.shape), maxval=255.0)
        y = tf.random.uniform((self.batch,), maxval=self.classes, dtype=tf.int32)
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
        model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
        first = clock() - began
        steps = _StepClock()
        model.fit(data, epochs=1, steps_per_epoch=PROBE_STEPS, verbose=0, callbacks=[steps])
        began = clock()
        model.evaluate(data, steps=1, verbose=0)
        eval_first = clock() - began
        eval_steps = _StepClock()
        model.evaluate(data, steps=PROBE_STEPS, verbose=0, callbacks=[eval_steps])
        self.activation_bytes = max(self.activation_bytes, _activation_bytes(model, self.recipe.data.batch_size))
        step, eval_step = steps.fastest(), eval_steps.fastest()
        return {"overhead": max(0.0, first - step) + max(0.0, eval_first - eval_step), "step": step,
                "eval_step": eval_step}

    def _at(self, macs: float, key: str) -> float:
        """`key` at `macs`, piecewise linear between the probed genomes (the cheapest, the reference, and the
        costliest when it is cheap enough to probe): the cheapest's value below it, and above the costliest
        probed one a line through the origin (a network too costly to probe is bound by its MACs), except for
        the overhead, which stays at that genome's."""
        points = sorted(self.points.items())
        (x0, y0), (xn, yn) = points[0], points[-1]
        if macs <= x0:
            return y0[key]
        if macs >= xn:
            return yn[key] * macs / max(xn, 1.0) if key != "overhead" else yn[key]
        (xa, ya), (xb, yb) = next((a, b) for a, b in zip(points, points[1:]) if macs <= b[0])
        return ya[key] + (yb[key] - ya[key]) * (macs - xa) / (xb - xa)

    def _step(self, macs: float, batch: int, key: str = "step") -> float:
        compute = self._at(macs, key) * batch / self.batch
        decode = self.decode_seconds * batch / max(1, os.cpu_count() or 1)
        # The input pipeline (augmentation, shuffling) shares the same cores: its time per image adds up.
        pipeline = self.pipeline_seconds * batch if key == "step" else 0.0
        return max(compute, decode) + pipeline

    def training(self, macs, steps, batch, eval_batches) -> float:
        """One training of `steps` steps and its evaluation: overheads + steps x step time + evaluation steps."""
        eval_batch = self.recipe.data.eval_batch_size or self.recipe.data.batch_size
        return (self._at(macs, "overhead") + steps * self._step(macs, batch)
                + eval_batches * self._step(macs, eval_batch, "eval_step"))

    def supernet(self, steps, batch) -> float:
        """The supernet's training: its own probed step (a sub-genome per step, or three with the sandwich
        rule, through the elastic layers), scaled to the recipe's batch, plus the costliest genome's overhead."""
        per_image = self.supernet_step / self.supernet_batch
        decode = self.decode_seconds * batch / max(1, os.cpu_count() or 1)
        return self._at(self.macs["costliest"], "overhead") + steps * (
            max(per_image * batch, decode) + self.pipeline_seconds * batch)

    def _time_supernet(self):
        """(the supernet, wall seconds of the fastest of PROBE_STEPS training steps): synthetic images, nothing
        saved."""
        bound, evaluation = self.bound, self.recipe.evaluation
        supernet = Supernet(bound.space, input_shape=bound.input_shape, num_classes=bound.num_classes,
                            quantizer=bound.quantizer)
        self.supernet_batch = int(max(2, min(self.recipe.data.batch_size, PROBE_BATCH,
                                             PROBE_MACS_PER_STEP // max(self.macs["costliest"], 1))))
        optimizer = supernet_training.standalone_optimizer(supernet_training.DEFAULT_LEARNING_RATE, 1000)
        training.build_optimizer(optimizer, supernet.model.trainable_variables, supernet.strategy)
        x = tf.random.uniform((self.supernet_batch, *self.shape), maxval=1.0)
        y = tf.random.uniform((self.supernet_batch,), maxval=self.classes, dtype=tf.int32)
        batches = supernet_training.distribute(supernet.strategy, tf.data.Dataset.from_tensors((x, y)).repeat())
        per_step = 3 if evaluation.sandwich else 1
        step = supernet_training.make_step(supernet, optimizer, evaluation.distill and evaluation.sandwich,
                                           batches.element_spec, per_step)
        rng, seconds = np.random.default_rng(0), []
        for _ in range(PROBE_STEPS + 1):  # the first traces
            genomes = [supernet.sample_genome(rng) for _ in range(per_step)]
            images, labels = next(batches)
            began = time.perf_counter()
            float(step(images, labels, tf.constant([supernet.config_rows(g) for g in genomes], tf.int32)))
            seconds.append(time.perf_counter() - began)
        return supernet, min(seconds[1:])

    def _time_oneshot(self, supernet) -> None:
        """A one-shot candidate's fixed wall seconds and seconds per batch (recalibration or scoring), from the
        fastest of 3 evaluations with 1 + 1 and with 3 + 3 batches (a line through the two)."""
        rng = np.random.default_rng(1)
        x = tf.random.uniform((self.supernet_batch, *self.shape), maxval=1.0)
        y = tf.random.uniform((self.supernet_batch,), maxval=self.classes, dtype=tf.int32)

        def fastest(count: int) -> float:
            batches = [(x, y)] * count
            seconds = []
            for _ in range(3):
                genome = supernet.sample_genome(rng)
                began = time.perf_counter()
                supernet.evaluate(genome, batches, recalibration_data=batches)
                seconds.append(time.perf_counter() - began)
            return min(seconds)

        fastest(1)  # traces
        one, three = fastest(1), fastest(3)
        self.oneshot_batch = max(0.0, (three - one) / 4)  # 4 more batches in `three`
        self.oneshot_fixed = max(0.0, one - 2 * self.oneshot_batch)

    def oneshot(self, macs, batches) -> float:
        """One one-shot candidate: recalibration and scoring, forward passes in the supernet (no new model traced),
        as probed in the supernet itself; `macs` is unused (the elastic layers compute at the supernet's size)."""
        eval_batch = self.recipe.data.eval_batch_size or self.recipe.data.batch_size
        return self.oneshot_fixed + batches * self.oneshot_batch * eval_batch / self.supernet_batch

    def summary(self) -> Dict[str, Any]:
        device = tf.config.list_physical_devices("GPU")
        where = f"GPU ({len(device)})" if device else f"CPU ({os.cpu_count()} cores visible)"
        points = {f"{macs / 1e6:.1f}M MACs": {k: round(v, 4) for k, v in p.items()} for macs, p in self.points.items()}
        return {"device": where, "batch": self.batch, "pipeline_ms_per_image": round(1e3 * self.pipeline_seconds, 4),
                "image": "x".join(map(str, self.shape)),
                "genomes": self.probed, "points": points, "jpeg_decode_s": round(self.decode_seconds, 5),
                "seconds": round(self.seconds, 1)}


def _pipeline_seconds(dataset, batch: int, count: int = 8) -> float:
    """Seconds per image of the real training pipeline (augmentation, shuffle), read alone after a warm-up."""
    pipeline = iter(dataset.batched("train", batch).repeat())
    next(pipeline)
    began = time.process_time()
    for _ in range(count):
        next(pipeline)
    return (time.process_time() - began) / (count * batch)


def _jpeg_decode_seconds(count: int = 40) -> float:
    """Seconds to decode, crop and resize one ImageNet-sized JPEG (500x375) on one core, as the pipeline does."""
    image = tf.cast(tf.random.uniform((375, 500, 3), maxval=255), tf.uint8)
    encoded = tf.io.encode_jpeg(image, quality=90)
    window = tf.constant([40, 60, 280, 360])
    began = time.process_time()
    for _ in range(count):
        crop = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
        tf.image.resize(crop, (224, 224))
    return (time.process_time() - began) / count


def _activation_bytes(model: tf.keras.Model, batch: int) -> float:
    """Float32 bytes of every layer's output at `batch`, twice: kept for the backward pass, and its gradient.

    Counted from the model's shapes, not from the process's memory growth, which at a probe batch of 2 is
    mostly the model's build and tracing, and scaled to a batch of 512 made hundreds of GB.
    """
    elements = 0
    for layer in model.layers:
        for output in tf.nest.flatten(layer.output):
            elements += int(np.prod([d for d in output.shape[1:] if d is not None]))
    return 2.0 * 4 * elements * batch
