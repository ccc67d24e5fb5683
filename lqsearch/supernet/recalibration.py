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


def _assign_statistics(layer, mean: np.ndarray, variance: np.ndarray) -> None:
    """Writes the first `len(mean)` channels of a BatchNorm's moving statistics (all of a static one)."""
    for variable, value in ((layer.moving_mean, mean), (layer.moving_variance, variance)):
        full = variable.numpy()
        full[: len(value)] = value
        variable.assign(full)


class BatchNormRecalibrator:
    """Re-estimates the BatchNorm moving statistics of one model; traced once, reusable.

    The model runs forward in training mode (each BatchNorm normalizes with the
    statistics of its batch, as during training) and no weight is updated. The new
    moving mean and variance of each BatchNorm are the mean and variance of its
    input over ALL the given batches (pooled exactly, not a momentum average).
    Elastic BatchNorms (a supernet's) get their first, active channels rewritten.

    Arguments:
        model: a built, flat Keras functional or Sequential model.

    Raises:
        ValueError: if the model nests other models.
    """

    def __init__(self, model: tf.keras.Model):
        self.layers = _batchnorm_layers(model)
        self._moments = None
        if self.layers:
            probe = tf.keras.Model(model.inputs, [layer.input for layer in self.layers])

            def moments(images):
                features = probe(images, training=True)
                features = features if isinstance(features, (list, tuple)) else [features]
                return [tf.nn.moments(f, axes=list(range(f.shape.rank - 1))) for f in features]

            self._moments = tf.function(moments, input_signature=[_input_spec_of(model)])

    def __call__(self, batches: Iterable) -> dict:
        """Recalibrates on `batches` (an iterable of (images, labels) or of images).

        Returns:
            {"layers": BatchNorm layers, "batches": batches used, "examples": images used}.

        Raises:
            ValueError: if `batches` is empty.
        """
        if not self.layers:
            return {"layers": 0, "batches": 0, "examples": 0}
        totals, count, used = None, 0, 0
        for batch in batches:
            images = _images_of(batch)
            size = int(tf.shape(images)[0])
            stats = [(m.numpy().astype(np.float64), v.numpy().astype(np.float64)) for m, v in self._moments(images)]
            # Sums of E[x] and E[x^2] weighted by examples (every example has the same positions).
            sums = [(size * m, size * (v + m * m)) for m, v in stats]
            totals = sums if totals is None else [(a + c, b + d) for (a, b), (c, d) in zip(totals, sums)]
            count += size
            used += 1
        if not used:
            raise ValueError("BatchNorm recalibration needs at least one batch of training images.")
        for layer, (first, second) in zip(self.layers, totals):
            mean = first / count
            variance = np.maximum(second / count - mean * mean, 0.0)
            _assign_statistics(layer, mean.astype(np.float32), variance.astype(np.float32))
        return {"layers": len(self.layers), "batches": used, "examples": count}


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

        self._predict = tf.function(predict, input_signature=[_input_spec_of(model)])

    def accuracy(self, pipeline: Iterable, *, max_batches: Optional[int] = None) -> float:
        """Accuracy in [0, 1] over the (images, labels) batches of `pipeline` (at most `max_batches`).

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
        return correct / total


def accuracy(model: tf.keras.Model, pipeline: Iterable, *, max_batches: Optional[int] = None) -> float:
    """Top-1 accuracy of `model` (inference mode) over the (images, labels) batches of `pipeline`.

    Arguments:
        model: a Keras model returning logits or probabilities.
        pipeline: a `tf.data` pipeline or an iterable of (images, labels) batches.
        max_batches: stop after this many batches.

    Returns:
        The accuracy in [0, 1].

    Raises:
        ValueError: if `pipeline` yields no example.
    """
    return Predictor(model).accuracy(pipeline, max_batches=max_batches)
