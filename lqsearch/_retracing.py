"""Quiets TensorFlow's retracing warning when it only counts new Keras models, each tracing its own step once."""
import contextlib
import logging
from typing import Iterator

import tensorflow as tf

__all__ = ["quiet_new_model_traces"]

#: Keras's `tf.function`s of one model, by attribute name.
_MODEL_FUNCTIONS = ("train_function", "test_function", "predict_function")
_RETRACING = "triggered tf.function retracing"


class _NewModelTraces(logging.Filter):
    """Drops TensorFlow's retracing warning when `model`'s function it names was traced only once.

    TensorFlow counts traces per Python function code, and every Keras model's step is the same
    code (`Model.make_train_function.<locals>.train_function`), so training or evaluating five new
    candidates in a row warns "5 out of the last 5 calls ... triggered tf.function retracing"
    although each model traced its own step once, as it must. A function of `model` traced more
    than once (new shapes or Python values: a real retrace) keeps the warning.
    """

    def __init__(self, model: tf.keras.Model):
        super().__init__()
        self.model = model

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _RETRACING not in message:
            return True
        for name in _MODEL_FUNCTIONS:
            if f".<locals>.{name} at " in message:
                function = getattr(self.model, name, None)
                traces = getattr(function, "experimental_get_tracing_count", None)
                return traces is None or traces() > 1
        return True


@contextlib.contextmanager
def quiet_new_model_traces(model: tf.keras.Model) -> Iterator[None]:
    """While Keras runs `model`, drops the retracing warnings that only count new models' first traces."""
    quiet = _NewModelTraces(model)
    logger = tf.get_logger()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
