"""TensorBoard HParams of a search: each trial's genome and metrics, in the HParams plugin's own format.

`write_trial` writes one trial as one HParams session: the run
`<log_dir>/<trial_id>` holds its session start (the genome's genes as
hparams, with Keras Tuner's own conversion of the search space, as Keras
Tuner does when a TensorBoard callback is passed), one scalar per metric
(step 0) and its session end (success, or failure for a failed trial). The
experiment (every gene's domain and the metrics) is written once to
`<log_dir>` itself. Open it with `tensorboard --logdir <log_dir>`, tab
HPARAMS. A failed write logs a warning and never stops a search.
"""
import logging
import math
from pathlib import Path

import tensorflow as tf
from keras_tuner.engine import trial as trial_module
from keras_tuner.src.engine import tuner_utils  # Keras Tuner's HyperParameters -> HParams conversion
from tensorboard.plugins.hparams import api as hparams_api
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hparams_summary

__all__ = ["write_trial", "log_trial", "METRICS"]

logger = logging.getLogger(__name__)

#: The metrics of a `BinaryArchitectureSearch` trial shown in TensorBoard (those a trial reported).
METRICS = ("accuracy", "flops", "fitness", "latency_s")


def write_trial(log_dir, trial, metrics=METRICS):
    """Writes one ended trial as an HParams session; returns True, or False after logging why it could not.

    Arguments:
        log_dir: the TensorBoard folder (e.g. `<project>/tensorboard`).
        trial: a Keras Tuner `Trial` as the oracle recorded it (hyperparameters, metrics, status).
        metrics: the metric names to log when the trial has them.
    """
    try:
        log_dir = Path(log_dir)
        hparams = tuner_utils.convert_hyperparams_to_hparams(trial.hyperparameters, hparams_api)
        if not any(log_dir.glob("events.out.tfevents.*")):
            _write(log_dir, lambda: hparams_api.hparams_config(
                hparams=list(hparams), metrics=[hparams_api.Metric(name) for name in metrics]))
        _write(log_dir / str(trial.trial_id), lambda: _session(trial, hparams, metrics))
        return True
    except Exception as error:  # pylint: disable=broad-except  (TensorBoard output never fails a search)
        logger.warning("lqsearch: could not write trial %s to TensorBoard in %s: %r",
                       getattr(trial, "trial_id", "?"), log_dir, error)
        return False


def log_trial(log_dir, oracle, trial_id, metrics=METRICS):
    """`write_trial` for the trial `trial_id` as `oracle` recorded it (the chief's copy on a worker); never raises."""
    try:
        trial = oracle.get_trial(trial_id)
    except Exception as error:  # pylint: disable=broad-except  (e.g. the chief is gone)
        logger.warning("lqsearch: could not read trial %s for TensorBoard: %r", trial_id, error)
        return False
    return write_trial(log_dir, trial, metrics)


def _write(directory, body):
    writer = tf.summary.create_file_writer(str(directory))
    try:
        with writer.as_default():
            body()
    finally:
        writer.close()


def _session(trial, hparams, metrics):
    hparams_api.hparams(hparams, trial_id=str(trial.trial_id))
    for name in metrics:
        if trial.metrics.exists(name):
            value = trial.metrics.get_last_value(name)
            if value is not None and math.isfinite(value):
                tf.summary.scalar(name, float(value), step=0)
    ok = trial.status == trial_module.TrialStatus.COMPLETED
    end = hparams_summary.session_end_pb(api_pb2.STATUS_SUCCESS if ok else api_pb2.STATUS_FAILURE)
    tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)
