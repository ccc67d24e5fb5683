"""Seeds: every training's data order, augmentation and init come from its seeds, not from the process's history.

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
from lqsearch.supernet.training import _resume_iterator

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


class _Killed(Exception):
    pass


class _KillAfterEpoch(tf.keras.callbacks.Callback):
    """Stops the training like a kill after the backup of epoch `epoch` (BackupAndRestore runs first)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed()


def test_a_training_resumed_from_its_backup_equals_the_uninterrupted_one(small_data, tmp_path):
    space = _space()
    config = training.preset("cpu", epochs=3, batch_size=32, steps_per_epoch=3)
    data_of = small_data.seeded("train", 5, 32)

    def model():
        tf.keras.utils.set_random_seed(5)
        return space.build(space.uniform(1), input_shape=small_data.input_shape, num_classes=small_data.num_classes,
                           quantizer="bireal")

    straight = model()
    training.fit(straight, data_of, config, num_classes=small_data.num_classes, backup_dir=tmp_path / "straight")
    with pytest.raises(_Killed):
        training.fit(model(), data_of, config, num_classes=small_data.num_classes, backup_dir=tmp_path / "killed",
                     callbacks=[_KillAfterEpoch(1)])
    tf.random.normal([5])
    resumed = model()
    history = training.fit(resumed, data_of, config, num_classes=small_data.num_classes,
                           backup_dir=tmp_path / "killed")
    assert history.epoch == [2]  # only the epoch the kill left
    _assert_same_weights(straight.get_weights(), resumed.get_weights())


def test_the_study_seed_gives_every_row_the_same_batches(small_data, tmp_path, monkeypatch):
    given = []

    def fake_fit(model, train, config, **kwargs):
        given.append(np.concatenate([y.numpy() for _, y in train.passes(0, 2)]))

    monkeypatch.setattr(training, "fit", fake_fit)
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: {"accuracy": 50.0})
    space = _space()
    config = training.preset("cpu", epochs=2, batch_size=32)
    for index, genome in enumerate([space.uniform(1), space.uniform(2), space.uniform(1)]):
        retrain(space, genome, small_data, config, quantizer="bireal", out_dir=tmp_path / str(index),
                seed=4 if index < 2 else 5)
    np.testing.assert_array_equal(given[0], given[1])  # rows A and B, seed 4: paired
    assert not np.array_equal(given[0], given[2])  # seed 5: other batches


def test_the_supernet_resumes_on_the_batches_of_its_step(small_data):
    seeded = small_data.seeded("search_train", 2, 32)
    steps = 2 * seeded.num_batches + 3

    def labels(start):
        batches = _resume_iterator(seeded, start, steps)  # the training draws steps - start of them
        return [next(batches)[1].numpy().tolist() for _ in range(start, steps)]

    straight = labels(0)
    assert len(straight) == steps
    for start in (1, seeded.num_batches, seeded.num_batches + 2):
        assert labels(start) == straight[start:]


def test_imagenet_passes_depend_on_the_seed_and_epoch_only(synthetic_imagenet, tmp_path):
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, subset_dir=tmp_path,
                                search_val_per_class=1, search_train_per_class=1, image_size=16, batch_size=500,
                                deterministic=True)  # (a run makes every pipeline deterministic: seed_everything)

    def content(split, **pass_of):
        return [(x.numpy(), y.numpy()) for x, y in dataset.pipeline(split, **pass_of)]

    for split in ("search_train", "train"):
        first = content(split, seed=3, epoch=1)
        content(split)  # other passes in between
        tf.random.normal([5])
        again = content(split, seed=3, epoch=1)
        for (x, y), (x_again, y_again) in zip(first, again):
            np.testing.assert_array_equal(y, y_again)
            np.testing.assert_array_equal(x, x_again)  # same crops and flips
        other = content(split, seed=3, epoch=2)
        assert not all(np.array_equal(y, y_other) for (_, y), (_, y_other) in zip(first, other))
