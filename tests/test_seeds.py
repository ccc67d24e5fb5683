"""Seeds: every training's data order, augmentation and initialisation come from its seeds, not from the process's history.

A training (candidate, widest network, supernet, study row) repeated in the same process after other
trainings gives the same weights; the study's seed s gives every row the same batches; the one-shot
evaluators share recalibration batches drawn once per run directory and saved with the run.
"""
import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import data, training
from lqsearch.deploy import artifact
from lqsearch.run.final import retrain
from lqsearch.search.evaluation import RECALIBRATION_FILE, EvaluationConfig, make_evaluator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_data():
    return data.load_dataset("embedded", batch_size=32, train_limit=300, test_limit=60, search_fraction=0.3,
                             image_size=16, seed=0)


def _space():
    return lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)


def _bind(space, dataset):
    return space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="bireal")


def _assert_same_weights(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_study_training_repeated_after_another_one_gives_the_same_weights(small_data, tmp_path):
    space = _space()
    config = training.preset("cpu", epochs=2, batch_size=32, steps_per_epoch=3)
    genome = space.uniform(1)

    def train(name, genome):
        card = retrain(space, genome, small_data, config, quantizer="bireal", out_dir=tmp_path / name, seed=7)
        return artifact.load(tmp_path / name)[0].get_weights(), card.metrics["test_accuracy"]

    first, first_accuracy = train("first", genome)
    train("between", space.uniform(2))  # another row in between
    again, again_accuracy = train("again", genome)
    _assert_same_weights(first, again)
    assert first_accuracy == again_accuracy


@pytest.mark.parametrize("mode", ["scratch", "inherit"])
def test_a_candidate_evaluated_after_others_equals_the_same_candidate_evaluated_first(small_data, tmp_path, mode):
    space = _space()
    config = EvaluationConfig(mode=mode, epochs=1, widest_epochs=1,
                              training=training.preset("cpu", batch_size=32, steps_per_epoch=3))
    genome, other = space.genome([0.5, 1, 1, 1, 1, 0.5]), space.uniform(2)

    def evaluator(name):
        made = make_evaluator(_bind(space, small_data), small_data, config, run_dir=tmp_path / name, seed=3)
        made.prepare()
        return made

    first = evaluator("first").evaluate(genome)[1].get_weights()
    later = evaluator("later")
    later.evaluate(other)
    tf.random.normal([5])  # consume global randomness in between too
    _assert_same_weights(first, later.evaluate(genome)[1].get_weights())


def test_recalibration_batches_are_saved_once_per_run_and_shared_by_every_oneshot_evaluator(small_data, tmp_path):
    space = _space()
    config = EvaluationConfig(mode="oneshot", supernet_steps=3, recalibration_batches=2)
    run_dir = tmp_path / "tuner"

    def batches():
        evaluator = make_evaluator(_bind(space, small_data), small_data, config, run_dir=run_dir, seed=1)
        evaluator.prepare()
        return [(np.asarray(x).tobytes(), np.asarray(y).tobytes()) for x, y in evaluator.recalibration]

    search = batches()  # the search's evaluator: trains the supernet, draws the batches
    assert len(search) == 2
    small_data.pipeline("search_train").take(3).reduce(0, lambda count, _: count + 1)  # iterate the pipeline
    assert batches() == search  # the random search's evaluator (same prepare_dir)
    tf.random.normal([5])
    assert batches() == search  # after a restart: new evaluator objects, same run directory
    saved = run_dir / RECALIBRATION_FILE
    assert saved.is_file() and saved.stat().st_mode & 0o777 == 0o644
