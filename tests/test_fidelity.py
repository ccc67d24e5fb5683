"""Faithful to the papers: class-balanced search splits, group inheritance, one-shot best models,
fixed recalibration batches, seeded candidates, preparation before the first trial, batch sizes.

References: Shen et al., "Searching for Accurate Binary Neural Architectures" (ICCV-W 2019);
Phan et al., "Binarizing MobileNet via Evolution-based Searching" (CVPR 2020).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import data, training
from lqsearch.run import recipes
from lqsearch.run.runner import run_recipe
from lqsearch.search.evaluation import EvaluationConfig, candidate_seed, make_evaluator
from lqsearch.search.inheritance import inherit_first_channels
from lqsearch.search.settings import SearchSettings
from lqsearch.search.tuner import BinaryArchitectureSearch
from lqsearch.supernet import Supernet, accuracy
from lqsearch.testing.network import free_port
from lqsearch.testing.tiny_spaces import TinyGroupedSpace


def _bind(space, dataset, quantizer):
    return space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer=quantizer)


def _arrays(per_class=30, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    images = rng.integers(0, 256, size=(len(labels), 8, 8), dtype=np.uint8)
    images[:, 0, 0] = np.arange(len(labels)) % 256  # make images distinguishable
    images[:, 0, 1] = np.arange(len(labels)) // 256
    return {"x_train": images, "y_train": labels, "x_test": images[:20], "y_test": labels[:20]}


def _keys(images):
    return {(int(a), int(b)) for a, b in images[:, 0, :2]}


# -- 1. class-balanced search splits ------------------------------------------------------
def test_per_class_search_splits_are_disjoint_balanced_seeded_and_from_train():
    arrays = _arrays()
    options = dict(search_train_per_class=12, search_val_per_class=5, batch_size=16)
    dataset = data.from_arrays(**arrays, **options, seed=3)
    train_x, train_y = dataset.arrays["search_train"]
    val_x, val_y = dataset.arrays["search_val"]
    assert np.bincount(train_y).tolist() == [12] * 10 and np.bincount(val_y).tolist() == [5] * 10
    assert not _keys(train_x) & _keys(val_x)  # disjoint
    assert _keys(train_x) | _keys(val_x) <= _keys(arrays["x_train"])  # from the train set only
    assert dataset.num_search_train == 120 and dataset.num_search_val == 50
    again = data.from_arrays(**arrays, **options, seed=3)
    np.testing.assert_array_equal(again.arrays["search_train"][0], train_x)
    other = data.from_arrays(**arrays, **options, seed=4)
    assert _keys(other.arrays["search_train"][0]) != _keys(train_x)


def test_the_resnet18_recipe_follows_shens_protocol():
    """The 4x network and the candidates train on a 50-per-class subset; accuracy on a separate slice."""
    recipe = recipes.load_recipe("resnet18_imagenet_width")
    assert recipe.evaluation.mode == "inherit"
    settings = {k: getattr(recipe.data, k) for k in ("search_train_per_class", "search_val_per_class")}
    dataset = data.from_arrays(**_arrays(per_class=80), batch_size=32, **settings)
    train_y, val_y = dataset.arrays["search_train"][1], dataset.arrays["search_val"][1]
    assert set(np.bincount(train_y)) == {50}  # what the widest network and every candidate train on
    assert set(np.bincount(val_y)) == {settings["search_val_per_class"]}
    assert not _keys(dataset.arrays["search_train"][0]) & _keys(dataset.arrays["search_val"][0])


def test_imagenet_search_splits_take_per_class_slices_in_file_order(synthetic_imagenet, tmp_path):
    """search_val: the first K images of each class, search_train the next N (real ILSVRC2012 format, tfds'
    builder; the stored records are checked against tfds' file order in test_data_real_format.py)."""
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, subset_dir=tmp_path,
                                search_val_per_class=1, search_train_per_class=2, image_size=16, batch_size=256,
                                augment=False)
    assert (dataset.num_search_train, dataset.num_search_val) == (2000, 1000)
    val = np.concatenate([y.numpy() for _, y in dataset.search_val])
    train = np.concatenate([y.numpy() for _, y in dataset.search_train])
    assert np.bincount(val, minlength=1000).tolist() == [1] * 1000
    assert np.bincount(train, minlength=1000).tolist() == [2] * 1000


# -- 5. inheritance for groups -------------------------------------------------------------
def test_a_grouped_candidate_inherits_the_block_diagonal_like_the_supernet():
    space = TinyGroupedSpace()
    shape = dict(input_shape=(8, 8, 3), num_classes=10)
    widest = space.build(space.costliest(), **shape)
    rng = np.random.default_rng(0)
    widest.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in widest.get_weights()])
    supernet = Supernet(space, **shape)
    supernet.inject(widest)
    for genome in ({"conv2": 0.5, "conv2_groups": 4, "conv3_groups": 8, "short_groups": 4},
                   {"conv2": 1.0, "conv2_groups": 2, "conv3_groups": 1, "short_groups": 1}):
        candidate = space.build(genome, **shape)
        inherit_first_channels(candidate, widest)
        for got, expected in zip(candidate.get_weights(), supernet.extract(genome).get_weights()):
            np.testing.assert_array_equal(got, expected)


# -- 6, 7. one-shot best models and fixed recalibration batches ------------------------------
@pytest.fixture(scope="module")
def small_data():
    return data.load_dataset("embedded", batch_size=32, train_limit=300, test_limit=60, search_fraction=0.3,
                             image_size=16, seed=0)


@pytest.mark.slow
@pytest.mark.heavy
def test_oneshot_best_models_are_recalibrated_and_reproduce_the_trial_accuracy(small_data, tmp_path):
    space = TinyGroupedSpace()
    evaluation = EvaluationConfig(mode="oneshot", supernet_steps=30, recalibration_batches=3)
    settings = SearchSettings(lam=None, max_trials=3, population_size=2, num_parents=2, num_crossovers=1,
                              num_mutations=1, seed=5)
    tuner = BinaryArchitectureSearch(space, small_data, settings=settings, evaluation=evaluation,
                                     directory=str(tmp_path), project_name="oneshot", overwrite=True)
    tuner.search(verbose=0)
    records = {r["trial_id"]: r for r in tuner.trial_records() if r["status"] == "COMPLETED"}
    assert len(records) == 3
    for trial in tuner.oracle.get_best_trials(3):
        recorded = records[trial.trial_id]["accuracy"]
        assert 0 <= recorded <= 100  # percent, not a fraction
        model = tuner.load_model(trial)
        assert accuracy(model, small_data.search_val) == pytest.approx(recorded, abs=1e-6)
    best = tuner.get_best_models(1)[0]
    best_record = max(records.values(), key=lambda r: r["fitness"])
    assert 100 * accuracy(best, small_data.search_val) == pytest.approx(best_record["accuracy"], abs=1e-6)
    preparation = tuner.preparation
    assert preparation["what"] == "trains the supernet" and preparation["trained"]
    # The supernet trained before the first trial, so no trial's duration holds it.
    assert max(r["duration_s"] for r in records.values()) < preparation["seconds"]


@pytest.mark.slow
def test_recalibration_batches_are_drawn_once_per_run(small_data, tmp_path, monkeypatch):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    config = EvaluationConfig(mode="oneshot", supernet_steps=5, recalibration_batches=2)
    evaluator = make_evaluator(_bind(space, small_data, "bireal"), small_data, config, run_dir=tmp_path, seed=1)
    evaluator.prepare()
    drawn = []
    monkeypatch.setattr(type(small_data), "take_batches", lambda self, *a: drawn.append(a) or [])
    genome = space.uniform(1)
    first = evaluator.evaluate(genome)[0]
    evaluator.evaluate(space.uniform(2))
    assert evaluator.evaluate(genome)[0] == first  # same batches, same accuracy
    assert drawn == []  # never drawn again after `prepare`
    assert len(evaluator.recalibration) == 2


# -- 8. seeded candidates ------------------------------------------------------------------------
def test_candidate_seeds_depend_on_the_run_seed_and_the_genome_only():
    genome = {"conv1": 1.0, "conv2": 2.0}
    assert candidate_seed(1, genome) == candidate_seed(1, dict(reversed(list(genome.items()))))
    assert candidate_seed(1, genome) != candidate_seed(2, genome)
    assert candidate_seed(1, genome) != candidate_seed(1, {**genome, "conv2": 4.0})
    assert 0 <= candidate_seed(7, genome) < 2**31


@pytest.mark.slow
@pytest.mark.heavy
def test_scratch_candidates_are_reproducible_whatever_ran_before(small_data, tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    config = EvaluationConfig(epochs=1, training=training.preset("cpu", steps_per_epoch=2))
    evaluator = make_evaluator(_bind(space, small_data, "dorefa"), small_data, config, run_dir=tmp_path, seed=9)
    genome = space.uniform(1)
    first, first_model = evaluator.evaluate(genome)
    tf.random.normal([3])  # consume global randomness in between
    evaluator.evaluate(space.uniform(2))
    again, again_model = evaluator.evaluate(genome)
    assert again == first  # the accuracy is coarse (90 images): the weights tell
    for got, expected in zip(again_model.get_weights(), first_model.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_inherit_candidates_start_from_the_first_channels_of_the_trained_widest_network(small_data, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setattr(training, "fit", lambda *args, **kwargs: None)  # the weights stay as they start
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: {"accuracy": 50.0})
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    config = EvaluationConfig(mode="inherit", epochs=1, widest_epochs=1)
    evaluator = make_evaluator(_bind(space, small_data, "bireal"), small_data, config, run_dir=tmp_path, seed=4)
    evaluator.prepare()
    widest = {layer.name: layer for layer in evaluator.widest.layers}
    _, model = evaluator.evaluate(space.genome([0.25, 1, 0.5, 2, 1, 3]))
    checked = 0
    for layer in model.layers:
        if not getattr(layer, "kernel", None) is not None or layer.name not in widest:
            continue
        kernel, source = layer.kernel.numpy(), widest[layer.name].kernel.numpy()
        if kernel.ndim != 4:
            continue
        assert kernel.shape != source.shape  # narrower than the 4x network, so a real slice
        np.testing.assert_array_equal(kernel, source[tuple(slice(0, n) for n in kernel.shape)])
        checked += 1
    assert checked >= 6


# -- 11. batch-size keys ------------------------------------------------------------------------
def test_the_training_batch_size_is_the_one_candidates_train_with(small_data, tmp_path, monkeypatch):
    seen = []

    def fake_fit(model, train, config, **kwargs):
        first_epoch = train.passes(0, 1)
        seen.append((config.batch_size, int(next(iter(first_epoch))[0].shape[0]), int(first_epoch.cardinality())))

    monkeypatch.setattr(training, "fit", fake_fit)
    monkeypatch.setattr(training, "evaluate", lambda *a, **k: {"accuracy": 50.0})
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    config = EvaluationConfig(epochs=1, training=training.preset("cpu", batch_size=20))
    evaluator = make_evaluator(_bind(space, small_data, "dorefa"), small_data, config, run_dir=tmp_path)
    evaluator.evaluate(space.uniform(1))
    assert seen == [(20, 20, -(-small_data.num_search_train // 20))]


@pytest.mark.slow
@pytest.mark.heavy
def test_the_same_recipe_and_seed_give_the_same_run(tmp_path):
    def run(name):
        recipe = recipes.load_recipe("quickstart", ["search.seed=3", "publish.name=null"], smoke=True)
        return run_recipe(recipe, tmp_path / name, stream=open(os.devnull, "w"))

    first, second = run("a"), run("b")
    keys = ("genome", "accuracy", "fitness", "generation", "origin", "parents", "status")
    assert [{k: t[k] for k in keys} for t in first["trials"]] == [{k: t[k] for k in keys} for t in second["trials"]]
    assert [row["test_accuracy"] for row in first["study"]] == [row["test_accuracy"] for row in second["study"]]
    assert first["final"]["test_accuracy"] == second["final"]["test_accuracy"]
    assert first["seed"] == 3 and first["schedule"] == "generational"


@pytest.mark.slow
@pytest.mark.heavy
def test_another_seed_draws_other_genomes(small_data, tmp_path):
    def first_population(seed):
        settings = SearchSettings(max_trials=4, population_size=4, num_parents=2, num_crossovers=2, num_mutations=2,
                                  seed=seed)
        tuner = BinaryArchitectureSearch(
            lqsearch.spaces.get("vgg_small", width_multiplier=0.0625), small_data, settings=settings,
            directory=str(tmp_path), project_name=str(seed), overwrite=True)
        return [tuner.oracle.create_trial(f"t{i}").hyperparameters.values for i in range(4)]

    assert first_population(3) == first_population(3)
    assert first_population(3) != first_population(4)


@pytest.mark.slow
@pytest.mark.heavy
def test_distributed_oneshot_trains_one_supernet_and_completes_every_trial(tmp_path):
    port, max_trials, processes = str(free_port()), 6, {}
    base = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = {**base, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": port}
            with open(tmp_path / f"{tuner_id}.log", "wb") as log:
                processes[tuner_id] = subprocess.Popen(
                    [sys.executable, "-m", "lqsearch.testing.search_process", "--directory", str(tmp_path),
                     "--max-trials", str(max_trials)], stdout=log, stderr=subprocess.STDOUT, env=env)
        for tuner_id in ("tuner0", "tuner1", "chief"):
            assert processes[tuner_id].wait(timeout=600) == 0, (tmp_path / f"{tuner_id}.log").read_text()[-3000:]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    logs = {tuner_id: (tmp_path / f"{tuner_id}.log").read_text() for tuner_id in processes}
    assert sorted(line for log in logs.values() for line in log.splitlines() if line.startswith("prepared:")) == [
        "prepared: loaded", "prepared: trained"]  # one worker trained the supernet, the other loaded it
    assert "prepared:" not in logs["chief"]  # the chief runs the oracle, no trial
    trials = [json.loads(p.read_text()) for p in (tmp_path / "search").glob("trial_*/trial.json")]
    assert sum(t["status"] == "COMPLETED" for t in trials) == max_trials
