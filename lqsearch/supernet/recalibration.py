"""BatchNorm recalibration and inference accuracy, traced once and reusable.

These work on any Keras model (static candidates extracted from a supernet,
larq-zoo models, ...) and are re-exported by `lqsearch.supernet`.
"""
from __future__ import annotations

import itertools
from typing import Iterable, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from lqsearch.checks import check_int
from lqsearch.supernet.elastic import ElasticBatchNormalization

__all__ = [
    "recalibrate_batchnorm",
    "BatchNormRecalibrator",
    "accuracy",
    "Predictor",
    "take_batches",
    "DEFAULT_RECALIBRATION_BATCHES",
]

#: K, the training batches used to re-estimate BatchNorm statistics by default.
DEFAULT_RECALIBRATION_BATCHES = 20


def take_batches(batches: Iterable, count: int) -> List[Tuple]:
    """The first `count` (x, y) batches of a list or a `tf.data` pipeline.

    Raises:
        ValueError: if `count` is not a positive integer.
    """
    count = check_int("the number of recalibration batches", count, minimum=1)
    if isinstance(batches, tf.data.Dataset):
        batches = batches.take(count)
    return list(itertools.islice(iter(batches), count))


def _batchnorm_layers(model: tf.keras.Model) -> list:
    """The BatchNorm layers (Keras' and elastic ones) of a flat functional or Sequential model.

    Raises:
        ValueError: if the model nests other models (their layers' inputs are not reachable).
    """
    nested = [layer.name for layer in model.layers if isinstance(layer, tf.keras.Model)]
    if nested:
        raise ValueError(f"BatchNorm recalibration needs a flat model; {model.name!r} nests the models {nested}.")
    kinds = (tf.keras.layers.BatchNormalization, ElasticBatchNormalization)
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def _input_spec_of(model: tf.keras.Model) -> tf.TensorSpec:
    return tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)


def _images_of(batch) -> tf.Tensor:
    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    return tf.cast(images, tf.float32)


class BatchNormRecalibrator:
    """Re-estimates the BatchNorm moving statistics of one model; traced once, reusable.

    The model runs forward in training mode (each BatchNorm normalizes with the
    statistics of its batch, as during training) and no weight is updated. The new
    moving mean and variance of each BatchNorm are the mean and variance of its
    input over ALL the given batches (pooled exactly, not a momentum average).
    Elastic BatchNorms (a supernet's) get their first, active channels rewritten.

    The sums are accumulated in float64 inside TensorFlow: one traced call per batch
    and one to write the statistics, whatever the number of BatchNorms (a supernet
    evaluates many candidates with one recalibrator, so this per-candidate cost
    matters). `save_statistics` / `restore_statistics` keep a copy of the moving
    statistics, also in one call each.

    Arguments:
        model: a built, flat Keras functional or Sequential model.

    Raises:
        ValueError: if the model nests other models.
    """

    def __init__(self, model: tf.keras.Model):
        self.layers = _batchnorm_layers(model)
        if not self.layers:
            return
        probe = tf.keras.Model(model.inputs, [layer.input for layer in self.layers])
        sizes = [int(layer.moving_mean.shape[0]) for layer in self.layers]
        # Per BatchNorm: the sums of n * E[x] and n * E[x^2] over the batches (every example has the
        # same number of positions), padded to the layer's full width; the channels in use; the count.
        self._sums = [tf.Variable(tf.zeros([2, size], tf.float64), trainable=False) for size in sizes]
        self._channels = tf.Variable(tf.zeros([len(sizes)], tf.int32), trainable=False)
        self._count = tf.Variable(tf.zeros([], tf.float64), trainable=False)
        self._saved = [tf.Variable(tf.zeros([2, size], layer.moving_mean.dtype), trainable=False)
                       for size, layer in zip(sizes, self.layers)]

        def accumulate(images):
            features = probe(images, training=True)
            features = features if isinstance(features, (list, tuple)) else [features]
            examples = tf.cast(tf.shape(images)[0], tf.float64)
            channels = []
            for total, size, feature in zip(self._sums, sizes, features):
                mean, variance = tf.nn.moments(feature, axes=list(range(feature.shape.rank - 1)))
                mean, variance = tf.cast(mean, tf.float64), tf.cast(variance, tf.float64)
                used = tf.shape(mean)[0]
                update = tf.stack([examples * mean, examples * (variance + mean * mean)])
                total.assign_add(tf.pad(update, [[0, 0], [0, size - used]]))
                channels.append(used)
            self._channels.assign(tf.stack(channels))
            self._count.assign_add(examples)

        def write():
            for index, (layer, total) in enumerate(zip(self.layers, self._sums)):
                used = self._channels[index]
                mean = total[0, :used] / self._count
                variance = tf.maximum(total[1, :used] / self._count - mean * mean, 0.0)
                _write_head(layer.moving_mean, mean)
                _write_head(layer.moving_variance, variance)
            reset()

        def reset():
            for total in self._sums:
                total.assign(tf.zeros_like(total))
            self._count.assign(tf.zeros([], tf.float64))

        def save():
            for saved, layer in zip(self._saved, self.layers):
                saved.assign(tf.stack([layer.moving_mean, layer.moving_variance]))

        def restore():
            for saved, layer in zip(self._saved, self.layers):
                layer.moving_mean.assign(saved[0])
                layer.moving_variance.assign(saved[1])

        # No autograph: the Python loops run over layers, never over tensors (and tracing is faster).
        self._accumulate = tf.function(accumulate, input_signature=[_input_spec_of(model)], autograph=False)
        self._write, self._reset = tf.function(write, autograph=False), tf.function(reset, autograph=False)
        self._save, self._restore = tf.function(save, autograph=False), tf.function(restore, autograph=False)

    def __call__(self, batches: Iterable) -> dict:
        """Recalibrates on `batches` (an iterable of (images, labels) or of images).

        Returns:
            {"layers": BatchNorm layers, "batches": batches used, "examples": images used}.

        Raises:
            ValueError: if `batches` is empty.
        """
        if not self.layers:
            return {"layers": 0, "batches": 0, "examples": 0}
        self._reset()
        count = used = 0
        for batch in batches:
            images = _images_of(batch)
            self._accumulate(images)
            count += int(images.shape[0])
            used += 1
            del batch, images  # before the next one is made: batches converted as they are used never coexist
        if not used:
            raise ValueError("BatchNorm recalibration needs at least one batch of training images.")
        self._write()
        return {"layers": len(self.layers), "batches": used, "examples": count}

    def tracing_counts(self) -> dict:
        """{function: times traced} of the recalibrator's traced functions (each should stay at 1)."""
        if not self.layers:
            return {}
        functions = {"accumulate": self._accumulate, "write": self._write, "reset": self._reset,
                     "save": self._save, "restore": self._restore}
        return {name: function.experimental_get_tracing_count() for name, function in functions.items()}

    def save_statistics(self) -> None:
        """Keeps a copy of every BatchNorm's moving mean and variance (one copy; a new save replaces it)."""
        if self.layers:
            self._save()

    def restore_statistics(self) -> None:
        """Writes back the moving statistics kept by the last `save_statistics`."""
        if self.layers:
            self._restore()


def _write_head(variable: tf.Variable, head: tf.Tensor) -> None:
    """Writes `head` into the first channels of `variable` (all of them for a static BatchNorm)."""
    variable.assign(tf.concat([tf.cast(head, variable.dtype), variable[tf.shape(head)[0]:]], axis=0))


def recalibrate_batchnorm(model: tf.keras.Model, batches: Iterable) -> dict:
    """Resets and re-estimates every BatchNorm's moving statistics of `model` from `batches`.

    See `BatchNormRecalibrator` (which traces once and can be reused on the same model).

    Arguments:
        model: a built, flat Keras functional or Sequential model.
        batches: an iterable of (images, labels) or of images, e.g. `dataset.take_batches("search_train", 20)`.

    Returns:
        {"layers": BatchNorm layers, "batches": batches used, "examples": images used}.

    Raises:
        ValueError: if `batches` is empty, or the model nests other models.
    """
    return BatchNormRecalibrator(model)(batches)


class Predictor:
    """Top-1 accuracy of one model in inference mode; traced once, reusable.

    Arguments:
        model: a Keras model returning logits or probabilities.
    """

    def __init__(self, model: tf.keras.Model):
        def predict(images):
            return tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)

        self._predict = tf.function(predict, input_signature=[_input_spec_of(model)], autograph=False)

    def tracing_count(self) -> int:
        """How many times the prediction function was traced (it should stay at 1)."""
        return self._predict.experimental_get_tracing_count()

    def accuracy(self, pipeline: Iterable, *, max_batches: Optional[int] = None) -> float:
        """Top-1 accuracy in percent over the (images, labels) batches of `pipeline` (at most `max_batches`).

        Raises:
            ValueError: if `pipeline` yields no example.
        """
        correct = total = 0
        for index, (images, labels) in enumerate(pipeline):
            if max_batches is not None and index >= max_batches:
                break
            predicted = self._predict(tf.cast(images, tf.float32)).numpy()
            labels = np.asarray(labels).reshape(-1)
            correct += int(np.sum(predicted == labels))
            total += len(labels)
        if not total:
            raise ValueError("accuracy: the evaluation pipeline yielded no example.")
        return 100.0 * correct / total


def accuracy(model: tf.keras.Model, pipeline: Iterable, *, max_batches: Optional[int] = None) -> float:
    """Top-1 accuracy of `model` (inference mode) over the (images, labels) batches of `pipeline`.

    Arguments:
        model: a Keras model returning logits or probabilities.
        pipeline: a `tf.data` pipeline or an iterable of (images, labels) batches.
        max_batches: stop after this many batches.

    Returns:
        The accuracy in percent, in [0, 100] (as everywhere in lqsearch).

    Raises:
        ValueError: if `pipeline` yields no example.
    """
    return Predictor(model).accuracy(pipeline, max_batches=max_batches)
