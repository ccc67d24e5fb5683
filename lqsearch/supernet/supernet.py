"""Weight-sharing supernets: one-shot evaluation of widths and groups (Phan et al., generalized).

How the supernet is built (an "elastic clone"; the space code is unchanged):

1. `space.build(space.costliest())` gives the largest static model. Its graph is
   cloned with `tf.keras.models.clone_model`, replacing every `Conv2D` /
   `QuantConv2D`, `BatchNormalization` and `Dense` by an elastic counterpart
   of the same name (`lqsearch.supernet.elastic`). Pooling, `Add`, `Concatenate` and
   `Flatten` layers are copied: they work on any channel count.
2. Which gene drives which conv is found by probing the space once: starting
   from `space.cheapest()`, each gene in turn is set to its costliest value and
   the convs whose `filters` (width gene) or `groups` (groups gene) change are
   recorded. The probes read `space.conv_configs` (the space's `_build` traced on
   shapes, no model built) when the space has an analytic cost, else they build
   each probe. A conv's run-time filters / groups are then the gene's concrete
   value from `space.layer_table(genome)`. The mapping is checked against
   `space.build` for the costliest genome, and again at every `extract`. A conv
   may have a width gene and a groups gene at once.
3. `set_genome` only assigns int32 variables: the graph never retraces. Input
   channels follow the tensors' dynamic shapes.
4. `extract(genome)` builds the static `space.build(genome)` and copies each
   layer's inherited weights by name: the first channels for widths, the
   grouped kernel gathered from the block diagonal for groups. Both models
   quantize the same kernel (crop, gather, then quantize) and run the same
   BatchNorm ops, so they agree to float rounding, in inference and in training
   mode. `inject(static_model)` is the inverse.

Training (`train`) is Phan et al.'s Algorithm 2, a random sub-genome every step,
optionally with the sandwich rule (largest + smallest + random) and in-place
distillation; it is checkpointed in the run directory and resumes from it
(`lqsearch.supernet.training`). `evaluate` gives a candidate's one-shot
accuracy: BatchNorm statistics re-estimated on K training batches, then
validation accuracy, no training; by default computed inside the supernet (no
model build or tracing per candidate), or on the extracted static model with
`static=True`. `recalibrate_batchnorm` does the same re-estimation on any Keras
model. `measure_rank_correlation` measures Kendall's tau between one-shot and
stand-alone accuracies (`lqsearch.supernet.rank_correlation`).
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from lqsearch.supernet import elastic
from lqsearch.supernet import training as _training
from lqsearch.supernet._controls import conv_configs as _conv_configs
from lqsearch.supernet._controls import probe_controls as _probe_controls
from lqsearch.supernet.recalibration import (
    DEFAULT_RECALIBRATION_BATCHES,
    BatchNormRecalibrator,
    Predictor,
    accuracy,
    recalibrate_batchnorm,
    take_batches,
)
from lqsearch.supernet.training import standalone_optimizer

__all__ = ["Supernet"]

DEFAULT_LEARNING_RATE = _training.DEFAULT_LEARNING_RATE


class Supernet:
    """A weight-sharing supernet over the width and/or group genes of a search space.

    Arguments:
        space: a `SearchSpace` whose genes are widths and/or group counts.
        input_shape: HxWxC of the images.
        num_classes: classifier outputs.
        quantizer: a preset name from `lqsearch.quantizers`; None -> `space.default_quantizer`.
        strategy: the `tf.distribute` strategy whose scope holds the shared weights and that `train`
            runs each step under (one `strategy.run` per batch); default the current one.

    Attributes:
        model: the elastic `tf.keras.Model`; it runs the genome set by `set_genome`.
        genome: the active genome.

    Raises:
        ValueError: if the space's genes cannot be mapped onto its layers (see the module docstring).
        TypeError: if the space uses a weighted layer with no elastic counterpart.

    Example:
        >>> supernet = Supernet(space, input_shape=(28, 28, 1), num_classes=10)
        >>> supernet.train(data.seeded("search_train", 0), steps=2000, checkpoint_dir=run_dir / "supernet")
        >>> batches = data.take_batches("search_train", 20)
        >>> supernet.evaluate(genome, data.search_val, recalibration_data=batches)
    """

    def __init__(self, space, *, input_shape: Sequence[int], num_classes: int, quantizer: Optional[str] = None,
                 strategy: Optional[tf.distribute.Strategy] = None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.space = space
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.quantizer = quantizer or space.default_quantizer
        largest = self._build_static(space.costliest())
        self._fixed = _conv_configs(largest)
        self._controls = _probe_controls(space, self._static_conv_configs)
        self._check_matches(largest, space.costliest())
        self._check_matches(self._static_conv_configs(space.cheapest()), space.cheapest())
        with self.strategy.scope():
            self.model = elastic.elastic_clone(
                largest, name=f"{space.name}_supernet",
                widths={name for name, (width, _) in self._controls.items() if width},
                groups={name for name, (_, groups) in self._controls.items() if groups},
            )
        self._layers = elastic.elastic_layers(self.model)
        self._convs = {n: layer for n, layer in self._layers.items() if isinstance(layer, elastic.ElasticConv2D)}
        self._conv_order = sorted(self._convs)
        # No autograph: no Python control flow depends on tensors here (and tracing is faster).
        self._assign_active = tf.function(
            self._assign_active_config, input_signature=[tf.TensorSpec([len(self._conv_order), 2], tf.int32)],
            autograph=False,
        )
        self.gradients = tf.function(lambda images, labels, soft_targets, distill_weight: self._compute_gradients(
            images, labels, soft_targets, distill_weight), input_signature=self._step_signature(), autograph=False)
        self._recalibrator = BatchNormRecalibrator(self.model)
        self._predictor = Predictor(self.model)
        self._standalone = None  # (optimizer settings, optimizer, traced apply) of `train_standalone`
        self.train_steps = {}  # `train`'s traced steps, by optimizer and settings: (optimizer, step)
        self.genome = None
        self.set_genome(space.costliest())

    # -- configuration -------------------------------------------------------------
    def _build_static(self, genome) -> tf.keras.Model:
        return self.space.build(
            genome, input_shape=self.input_shape, num_classes=self.num_classes, quantizer=self.quantizer
        )

    def _static_conv_configs(self, genome) -> Dict[str, tuple]:
        """{conv name: (filters, groups)} of `genome`'s static model: traced on shapes when the space
        has an analytic cost, else read from a build."""
        if getattr(self.space, "analytic_cost", False):
            return self.space.conv_configs(genome, input_shape=self.input_shape, num_classes=self.num_classes,
                                           quantizer=self.quantizer)
        return _conv_configs(self._build_static(genome))

    def conv_config(self, genome: Union[Sequence, Mapping[str, Any]]) -> Dict[str, tuple]:
        """{conv name: (filters, groups)} that `genome` gives every conv of the supernet."""
        table = dict(self.space.layer_table(genome))
        config = {}
        for name, (filters_gene, groups_gene) in self._controls.items():
            filters, groups = self._fixed[name]
            config[name] = (
                int(table[filters_gene]) if filters_gene else filters,
                int(table[groups_gene]) if groups_gene else groups,
            )
        return config

    def _check_matches(self, static_model, genome) -> None:
        """Raises ValueError if `conv_config(genome)` disagrees with the static build (a model, or its
        {conv name: (filters, groups)})."""
        actual = static_model if isinstance(static_model, dict) else _conv_configs(static_model)
        expected = self.conv_config(genome)
        wrong = {n: (expected.get(n), c) for n, c in actual.items() if expected.get(n) != c}
        if wrong:
            raise ValueError(
                f"Space {self.space.name!r}: the supernet's gene -> layer map disagrees with space.build for "
                f"{self.space.genome(genome)}: {{layer: (supernet, static)}} = {wrong}. A width gene's "
                "layer_table value must be the output channels of every conv it changes."
            )

    def set_genome(self, genome: Union[Sequence, Mapping[str, Any]]) -> None:
        """Makes the supernet run `genome` (assigns variables; no retracing).

        Raises:
            ValueError: on an invalid genome.
        """
        genome = self.space.genome(genome)
        self._assign_active(tf.constant(self.config_rows(genome), tf.int32))
        self.genome = genome

    def config_rows(self, genome) -> list:
        """[filters, groups] of every elastic conv (sorted by name) under `genome`: what `set_genome` assigns,
        and a training step assigns inside `strategy.run`."""
        config = self.conv_config(genome)
        return [list(config[name]) for name in self._conv_order]

    def tracing_counts(self) -> Dict[str, int]:
        """{traced function: times traced}: the training step, the genome setter, BatchNorm
        recalibration and prediction. Each stays at 1 however many genomes are set, trained or
        evaluated (`evaluate(static=True)` builds and traces a model of its own instead)."""
        counts = {"gradients": self.gradients.experimental_get_tracing_count(),
                  "set_genome": self._assign_active.experimental_get_tracing_count(),
                  "predict": self._predictor.tracing_count()}
        counts.update({f"recalibrate_{name}": count for name, count in self._recalibrator.tracing_counts().items()})
        return counts

    def _assign_active_config(self, config):
        """Assigns row i of `config`, (filters, groups), to the i-th conv of `_conv_order` (traced once)."""
        for index, name in enumerate(self._conv_order):
            self._convs[name].active_filters.assign(config[index, 0])
            self._convs[name].active_groups.assign(config[index, 1])

    def sample_genome(self, rng: Union[random.Random, np.random.Generator]) -> dict:
        """A uniformly random genome (each gene independently).

        Arguments:
            rng: a `random.Random` or a `numpy.random.Generator`.

        Returns:
            A validated genome dict of plain Python values.
        """
        genome = {}
        for gene in self.space.genes:
            if isinstance(rng, np.random.Generator):
                index = int(rng.integers(len(gene.values)))
            else:
                index = rng.randrange(len(gene.values))
            genome[gene.name] = gene.values[index]
        return self.space.genome(genome)

    # -- extraction and evaluation ---------------------------------------------------
    def extract(self, genome: Union[Sequence, Mapping[str, Any]]) -> tf.keras.Model:
        """The static model of `genome` (`space.build`) carrying the supernet's shared weights.

        Returns:
            A new, uncompiled `tf.keras.Model`; BatchNorm holds the supernet's moving
            statistics for the first channels (recalibrate before evaluating).

        Raises:
            ValueError: on an invalid genome, or if the static model does not match the supernet's layers.
        """
        genome = self.space.genome(genome)
        static = self._build_static(genome)
        self._check_matches(static, genome)
        for layer, source in self._counterparts(static):
            layer.set_weights(source.sub_weights(layer))
        return static

    def inject(self, static_model: tf.keras.Model) -> None:
        """The inverse of `extract`: writes a static model's weights into the shared weights.

        Widths go to the first channels and grouped kernels onto the block diagonal
        (zero elsewhere in the cropped kernel). Use it to start the supernet from a
        trained widest network (Shen et al.), or to train a candidate through its twin
        (`train_standalone`).

        Raises:
            ValueError: if a weighted layer of `static_model` has no supernet counterpart.
        """
        for layer, target in self._counterparts(static_model):
            target.load_sub_weights(layer)

    def _counterparts(self, static_model: tf.keras.Model):
        """(static layer, its elastic supernet layer) for every weighted layer of `static_model`."""
        for layer in static_model.layers:
            if not layer.weights:
                continue
            counterpart = self._layers.get(layer.name)
            if counterpart is None:
                raise ValueError(f"Layer {layer.name!r} of the static model has no supernet counterpart.")
            yield layer, counterpart

    def train_standalone(
        self, genome: Union[Sequence, Mapping[str, Any]], pipeline, *, epochs: int,
        learning_rate: float = DEFAULT_LEARNING_RATE, initial_model: Optional[tf.keras.Model] = None,
    ) -> tf.keras.Model:
        """Trains `genome` from scratch through the supernet pinned to it, and returns the static model.

        The same computation as Keras training of `space.build(genome)` (initial weights
        from a fresh build, sparse cross-entropy, Adam with the learning rate decayed
        linearly to 0 over the epochs, see `standalone_optimizer`), but grouped convs run
        natively instead of through Keras' XLA path, which is much faster on CPU. It
        OVERWRITES the shared weights: use a Supernet instance of its own.

        Arguments:
            genome: the candidate.
            pipeline: seeded data (`dataset.seeded("search_train", seed)`: epoch e is its pass e), or a
                batched (images, labels) `tf.data` pipeline of known length, one pass per epoch.
            epochs: E.
            learning_rate: Adam's initial learning rate.
            initial_model: the static model of `genome` to start from (its weights are
                copied, it is not modified); default a fresh `space.build(genome)`.

        Returns:
            The trained static model (`extract(genome)`).
        """
        genome = self.space.genome(genome)
        if initial_model is None:
            initial_model = self._build_static(genome)
        self._check_matches(initial_model, genome)
        self.inject(initial_model)
        self.set_genome(genome)
        seeded = not isinstance(pipeline, tf.data.Dataset)
        per_epoch = pipeline.num_batches if seeded else _length(pipeline)
        apply = self._standalone_apply(standalone_optimizer(learning_rate, epochs * per_epoch))
        for epoch in range(epochs):
            for images, labels in (pipeline.passes(epoch, 1) if seeded else pipeline):
                images, labels = _training.model_input(images), tf.cast(labels, tf.int32)
                targets = tf.zeros([tf.shape(images)[0], self.num_classes])
                apply(self.gradients(images, labels, targets, tf.constant(0.0))[2])
        return self.extract(genome)

    def _standalone_apply(self, optimizer: tf.keras.optimizers.Optimizer):
        """A traced apply function for `optimizer`, reused between candidates with the same settings."""
        key = json.dumps(tf.keras.optimizers.serialize(optimizer), sort_keys=True, default=str)
        cached = self._standalone
        if cached is None or cached[0] != key:
            variables = self.model.trainable_variables
            optimizer.build(variables)
            cached = (key, optimizer, tf.function(lambda g: optimizer.apply_gradients(zip(g, variables))))
            self._standalone = cached
        for variable in cached[1].variables:  # a fresh Adam state: moments and step count at zero
            variable.assign(tf.zeros_like(variable))
        return cached[2]

    def evaluate(
        self,
        genome: Union[Sequence, Mapping[str, Any]],
        val_pipeline: Iterable,
        *,
        recalibration_data: Optional[Iterable] = None,
        recalibrate: bool = True,
        recalibration_batches: Optional[int] = None,
        max_batches: Optional[int] = None,
        static: bool = False,
    ) -> float:
        """One-shot accuracy of the extracted candidate `genome`: recalibrate BatchNorm, evaluate, no training.

        By default the candidate runs inside the supernet set to `genome`: it computes
        what `extract(genome)` computes (same kernels, same quantizers; checked by the
        tests to 1e-4), so the accuracy is the extracted model's, without building a
        model or tracing a function per candidate. The supernet's moving statistics and
        active genome are restored afterwards. `static=True` extracts the static model,
        recalibrates it with `recalibrate_batchnorm` and evaluates it.

        Arguments:
            genome: the candidate.
            val_pipeline: batches of (images, labels), e.g. `dataset.search_val`.
            recalibration_data: training batches: a list of (x, y), e.g.
                `dataset.take_batches("search_train", 20)`, or a tf.data pipeline.
            recalibrate: False keeps the supernet's shared moving statistics.
            recalibration_batches: K, use only the first K batches; default all the
                batches of a list, or the first `DEFAULT_RECALIBRATION_BATCHES` (20) of a pipeline.
            max_batches: evaluate on at most this many validation batches.
            static: evaluate the extracted static model instead of the supernet.

        Returns:
            Top-1 accuracy in percent, in [0, 100].

        Raises:
            ValueError: on an invalid genome, or if `recalibrate` is set and no
                recalibration batches are given.
        """
        genome = self.space.genome(genome)
        batches = None
        if recalibrate:
            if recalibration_data is None:
                raise ValueError(
                    "recalibrate=True needs recalibration_data, e.g. "
                    "dataset.take_batches('search_train', 20); or pass recalibrate=False."
                )
            batches = _recalibration_batches(recalibration_data, recalibration_batches)
        if static:
            model = self.extract(genome)
            if recalibrate:
                recalibrate_batchnorm(model, batches)
            return accuracy(model, val_pipeline, max_batches=max_batches)
        previous = self.genome
        self._recalibrator.save_statistics()
        try:
            self.set_genome(genome)
            if recalibrate:
                self._recalibrator(batches)
            return self._predictor.accuracy(val_pipeline, max_batches=max_batches)
        finally:
            self._recalibrator.restore_statistics()
            self.set_genome(previous)

    # -- training --------------------------------------------------------------------
    def _step_signature(self):
        return [
            tf.TensorSpec([None, *self.input_shape], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, self.num_classes], tf.float32),
            tf.TensorSpec([], tf.float32),
        ]

    def _compute_gradients(self, images, labels, soft_targets, distill_weight, scale=None):
        """Loss, logits and gradients of the active sub-network; traced once as `self.gradients`.

        The loss is `(1 - distill_weight) * CE(labels) + distill_weight * CE(soft_targets)`, times
        `scale` if given (a replica's share of the global batch, in a distributed step).
        """
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            hard = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
            soft = -tf.reduce_mean(tf.reduce_sum(soft_targets * tf.nn.log_softmax(logits), axis=-1))
            loss = (1.0 - distill_weight) * hard + distill_weight * soft
            if self.model.losses:
                loss += tf.add_n(self.model.losses)
            if scale is not None:
                loss = loss * scale
        return loss, logits, tape.gradient(loss, self.model.trainable_variables)

    def is_trained(self, checkpoint_dir: Union[str, os.PathLike], steps: int) -> bool:
        """True if `checkpoint_dir` holds this supernet's checkpoint of at least `steps` steps.

        Raises:
            ValueError: if the directory holds a supernet of another configuration.
        """
        done = _training.checkpoint_step(self, Path(checkpoint_dir))
        return done is not None and done >= steps

    def train(
        self,
        dataset_pipeline,
        *,
        steps: int,
        checkpoint_dir: Union[str, os.PathLike],
        optimizer: Optional[tf.keras.optimizers.Optimizer] = None,
        sandwich: bool = False,
        distill: bool = False,
        seed: int = 0,
        log_every: int = 100,
        checkpoint_every: int = 200,
        log: Optional[Callable[[str], None]] = None,
    ) -> dict:
        """Trains the shared weights with a random sub-genome every step (Phan et al., Algorithm 2).

        Resumable: when `checkpoint_dir` holds a checkpoint, it is restored and training
        continues from its step count (a finished run restores the weights and returns at
        once). The sub-genomes of step `s` depend only on (`seed`, `s`), and with seeded data
        so does its batch (pass s // B, batch s mod B), so a resumed run repeats the
        uninterrupted one exactly.

        Arguments:
            dataset_pipeline: seeded data, `dataset.seeded("search_train", seed)` (pass e's batches
                from the seed and e), or a batched (images, labels) `tf.data` pipeline, repeated (its
                own order: a pipeline reshuffled per iteration makes a resume differ).
            steps: total optimizer steps.
            checkpoint_dir: where checkpoints and `supernet.json` live.
            optimizer: default Adam(1e-3) with linear decay to 0 over `steps` (Phan et al.).
            sandwich: train largest + smallest + one random sub-network each step,
                averaging their gradients.
            distill: with `sandwich`, the largest learns from the labels and the
                others from its softened predictions (in-place distillation).
            seed: seed of the sub-genome sampling.
            log_every: loss averaging (and progress line) period.
            checkpoint_every: save a checkpoint every this many steps (and at the end).
            log: called with a progress line (step, mean loss, seconds per step, ETA) every
                `log_every` steps, e.g. `print`; None is quiet.

        Returns:
            {"steps", "start_step", "trained_steps", "seconds", "seconds_per_step",
             "loss_history": [[step, mean loss], ...], "final_loss", "skipped"}.

        Raises:
            ValueError: on bad arguments, or a checkpoint of another configuration.
        """
        return _training.train(
            self, dataset_pipeline, steps=steps, checkpoint_dir=Path(checkpoint_dir), optimizer=optimizer,
            sandwich=sandwich, distill=distill, seed=seed, log_every=log_every,
            checkpoint_every=checkpoint_every, log=log,
        )


def _recalibration_batches(batches: Iterable, count: Optional[int]) -> Iterable:
    """The first `count` batches; by default all of an iterable, or the first 20 of a tf.data pipeline.

    An iterable is passed on as it is (recalibration iterates it once), so one that converts its
    batches as they are used (the one-shot evaluator's) never has them all converted at once.
    """
    if count is None:
        if isinstance(batches, tf.data.Dataset):
            count = DEFAULT_RECALIBRATION_BATCHES
        else:
            return batches
    return take_batches(batches, count)


def _length(pipeline: tf.data.Dataset) -> int:
    """The number of batches of a finite pipeline.

    Raises:
        ValueError: if the pipeline's length is unknown or infinite.
    """
    length = int(pipeline.cardinality())
    if length <= 0:
        raise ValueError("The training pipeline needs a known, finite length (one pass per epoch).")
    return length


