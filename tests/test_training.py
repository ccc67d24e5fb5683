"""Schedules, weight inheritance (exact channel copy), final retraining (save, reload, predict), no retrace warnings."""
import logging
import types

import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import _retracing, training
from lqsearch.data import load_dataset
from lqsearch.deploy import artifact
from lqsearch.run.final import retrain
from lqsearch.search.inheritance import inherit_first_channels
from lqsearch.testing.tiny_spaces import TinyGroupedSpace


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("embedded", batch_size=50, train_limit=300, test_limit=100, search_fraction=0.2)


def test_paper_presets():
    cifar = training.preset("shen_cifar")
    assert (cifar.epochs, cifar.optimizer, cifar.learning_rate, cifar.milestones) == (200, "sgd", 0.1, (60, 120, 180))
    imagenet = training.preset("shen_imagenet")
    assert (imagenet.epochs, imagenet.milestones) == (150, (50, 100, 135))
    phan = training.preset("phan_imagenet")
    assert (phan.optimizer, phan.learning_rate, phan.schedule, phan.batch_size,
            phan.epochs) == ("adam", 1e-3, "linear", 512, 256)
    assert training.preset("phan_imagenet", epochs=3).epochs == 3


def test_step_schedule_decays_at_the_milestones():
    schedule = training.learning_rate_schedule(training.preset("shen_cifar"), steps_per_epoch=10)
    assert [float(schedule(step)) for step in (0, 599, 600, 1200,
                                               1800)] == pytest.approx([0.1, 0.1, 0.01, 0.001, 0.0001])


def test_linear_schedule_reaches_zero():
    schedule = training.learning_rate_schedule(training.preset("phan_imagenet", epochs=2), steps_per_epoch=5)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(10)) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "rmsprop"}, "'optimizer' must be one of adam, sgd, bop, got 'rmsprop'"),
        ({"epochs": -1}, "'epochs' is out of range: -1; allowed values are >= 0"),
        ({"learning_rate": 0}, "'learning_rate' is out of range: 0; allowed values are > 0"),
        ({"learning_rate": float("inf")}, "'learning_rate' must be a finite number, got inf"),
        ({"warmup": 3}, "Unknown TrainingConfig setting 'warmup'"),
    ],
)
def test_bad_training_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.preset("cpu", **kwargs)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid presets are cpu, phan_imagenet, shen_cifar, shen_imagenet"):
        training.preset("seed3")


def _separable(n: int = 256, seed: int = 0) -> tf.data.Dataset:
    """Two classes any network can tell apart: 8x8 images all near -1 or all near +1 (noise 0.1)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.normal(0.0, 0.1, (n, 8, 8, 1)) + np.where(labels == 1, 1.0, -1.0)[:, None, None, None]
    return tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels.astype("int32"))).batch(32)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "bop"])
def test_every_optimizer_trains(optimizer):
    # A model that learned nothing stays at chance (about 50%) and at its untrained loss (ln 2).
    data = _separable()
    tf.keras.utils.set_random_seed(1)
    model = lqsearch.spaces.get("vgg_small",
                                width_multiplier=0.125).build([1] * 6, input_shape=(8, 8, 1), num_classes=2)
    untrained = training.evaluate(model, data, num_classes=2)
    config = training.preset("cpu", epochs=3, optimizer=optimizer, steps_per_epoch=40)
    history = training.fit(model, data, config, num_classes=2)
    trained = training.evaluate(model, data, num_classes=2)
    assert np.isfinite(history.history["loss"]).all()
    assert trained["accuracy"] >= 95.0 and trained["loss"] < 0.5 * untrained["loss"], (untrained, trained)


def test_nan_loss_raises_candidate_failed(dataset):
    inputs = tf.keras.Input(dataset.input_shape)
    logits = tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(inputs))
    outputs = tf.keras.layers.Lambda(lambda t: t * float("nan"))(logits)
    with pytest.raises(training.CandidateFailed, match="NaN"):
        training.fit(tf.keras.Model(inputs, outputs), dataset.search_train, training.preset("cpu", epochs=1),
                     num_classes=10)


@pytest.mark.parametrize("name, target",
                         [("vgg_small", [0.25, 2, 1, 0.5, 3, 0.25]),
                          ("resnet18", [1, 0.5, 2, 3, 0.25, 1, 2, 4, 0.5, 1, 3, 2])])
def test_inherit_copies_the_first_channels_exactly(name, target):
    space = lqsearch.spaces.get(name, width_multiplier=0.125)
    shape = {"input_shape": (32, 32, 3), "num_classes": 10}
    widest = space.build(space.costliest(), **shape)
    for weight in widest.weights:  # distinct values everywhere, so a wrong slice cannot match
        weight.assign(tf.random.stateless_normal(weight.shape, seed=(len(weight.name), 1)))
    candidate = space.build(target, **shape)
    report = inherit_first_channels(candidate, widest)
    assert not report["skipped"]
    for layer in candidate.layers:
        if not layer.weights or layer.name == "fc":
            continue
        for got, source in zip(layer.get_weights(), widest.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(got, source[tuple(slice(0, d) for d in got.shape)])
    if name == "vgg_small":  # the FC after Flatten keeps the first channels at every pixel
        got = candidate.get_layer("fc").get_weights()[0]
        source = widest.get_layer("fc").get_weights()[0]
        c_got, c_src = candidate.get_layer("conv6").filters, widest.get_layer("conv6").filters
        np.testing.assert_array_equal(got.reshape(-1, c_got, 10), source.reshape(-1, c_src, 10)[:, :c_got, :])


def test_inherit_refuses_a_narrower_source():
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    narrow = space.build([0.25] * 6, input_shape=(32, 32, 3), num_classes=10)
    wide = space.build([1] * 6, input_shape=(32, 32, 3), num_classes=10)
    with pytest.raises(ValueError, match="must be at least as wide"):
        inherit_first_channels(wide, narrow)


@pytest.mark.slow
def test_final_retraining_saves_a_model_that_reloads_and_predicts_the_same(dataset, tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    genome = space.genome([0.5, 2, 1, 1, 1, 0.5])
    config = training.preset("cpu", epochs=1, steps_per_epoch=2)
    card = retrain(space, genome, dataset, config, quantizer="bireal", out_dir=tmp_path / "final")
    assert 0 <= card.metrics["test_accuracy"] <= 100 and card.metrics["flops"] > 0
    model, loaded_card = artifact.load(tmp_path / "final")
    assert loaded_card.genome == genome and loaded_card.space == space.get_config()
    assert loaded_card.quantizer == "bireal"
    x, _ = next(iter(dataset.test))
    scores = training.evaluate(model, dataset.test, num_classes=10)
    assert scores["accuracy"] == pytest.approx(card.metrics["test_accuracy"])
    again = retrain(space, genome, dataset, config, quantizer="bireal", out_dir=tmp_path / "final")
    assert again == card  # finished models are not retrained on resume
    np.testing.assert_allclose(artifact.load(tmp_path / "final")[0].predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


class _Retracing(logging.Handler):
    """Collects TensorFlow's "triggered tf.function retracing" warnings."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        if "triggered tf.function retracing" in record.getMessage():
            self.messages.append(record.getMessage())


@pytest.fixture
def retracing(monkeypatch):
    """Retracing warnings logged during the test, with TensorFlow's per-process warning budget fresh.

    TensorFlow warns at most twice per traced code for the whole process, so earlier tests could
    use it up; a fresh detector manager (private to TensorFlow) makes the test see every warning.
    """
    from tensorflow.python.eager.polymorphic_function import polymorphic_function
    fresh = polymorphic_function._FrequentTracingDetectorManager()
    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager", fresh)
    handler = _Retracing()
    tf.get_logger().addHandler(handler)
    try:
        yield handler, fresh
    finally:
        tf.get_logger().removeHandler(handler)


@pytest.mark.slow
def test_new_candidates_do_not_warn_of_retracing_but_still_trace_each_step_once(retracing):
    """Five new models trained and evaluated in a row, one step each, as a search does (four warnings before)."""
    handler, detectors = retracing
    images = np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32)
    pipeline = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 4)).batch(16)
    space, config = TinyGroupedSpace(), training.preset("cpu", epochs=1)
    filters = list(tf.get_logger().filters)
    for _ in range(5):
        model = space.build(space.reference_genome(), input_shape=(8, 8, 3), num_classes=4)
        training.fit(model, pipeline, config, num_classes=4, validation=pipeline)
        training.evaluate(model, pipeline, num_classes=4)
        assert model.train_function.experimental_get_tracing_count() == 1
        assert model.test_function.experimental_get_tracing_count() == 1
    assert handler.messages == []
    # TensorFlow did warn (train_function and test_function each crossed 5 traces), and only those were dropped ...
    assert sorted(d._total_warning_count for d in detectors._detectors.values()) == [1, 1]
    # ... and only while lqsearch ran the models: the user's process keeps its filters.
    assert tf.get_logger().filters == filters


def test_a_model_that_retraces_its_own_step_still_warns():
    model = types.SimpleNamespace(train_function=types.SimpleNamespace(experimental_get_tracing_count=lambda: 2),
                                  test_function=types.SimpleNamespace(experimental_get_tracing_count=lambda: 1))
    quiet = _retracing._NewModelTraces(model)

    def record(function):
        message = (f"5 out of the last 5 calls to <function Model.make_{function[:-9]}_function.<locals>.{function} at "
                   f"0x7f00> triggered tf.function retracing. Tracing is expensive ...")
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    assert quiet.filter(record("train_function"))  # traced twice: a real retrace, kept
    assert not quiet.filter(record("test_function"))  # traced once: this new model's own trace, dropped
    assert quiet.filter(record("predict_function"))  # not made yet: kept
    assert quiet.filter(logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, "another warning", None, None))


def _probe(strategy, model="vgg_small"):
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "lqsearch.testing.strategy_probe", strategy, "--devices", "2",
                           "--model", model], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mirrored_training_on_two_logical_devices_matches_one_device():
    """The same global batch on 2 replicas, the same initial weights and seeded data. Without BatchNorm the
    losses agree to float precision (tolerance 1e-4 relative). A binary VGG-small normalizes each half batch
    with its own BatchNorm statistics (Keras' default, unsynchronized), which moves a binary net's first
    epoch by up to ~15% here: its tolerance is 20%, and both must learn."""
    one, two = _probe("default", "no_batchnorm"), _probe("mirrored", "no_batchnorm")
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)
    one, two = _probe("default"), _probe("mirrored")
    assert len(one["losses"]) == len(two["losses"]) == 2
    for single, mirrored in zip(one["losses"], two["losses"]):
        assert mirrored == pytest.approx(single, rel=0.2)
    assert two["losses"][-1] < two["losses"][0] and one["losses"][-1] < one["losses"][0]


@pytest.mark.slow
@pytest.mark.parametrize("name, options, value", [("vgg_small", {"width_multiplier": 0.125}, 1),
                                                  ("mobilenet_m1", {"width_multiplier": 0.25}, 4)])
def test_mixed_precision_trains_binary_networks_on_the_cpu(name, options, value):
    data = load_dataset("embedded", batch_size=32, train_limit=256, test_limit=64, search_fraction=0.25,
                        image_size=32)
    space = lqsearch.spaces.get(name, **options)
    config = training.preset("cpu", epochs=3, batch_size=32, mixed_precision=True)
    model = training.build_model(config, lambda: space.build(space.uniform(value), input_shape=data.input_shape,
                                                             num_classes=10, quantizer="bireal"))
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored after the build
    assert model.layers[-2].compute_dtype == "bfloat16" and model.output.dtype == tf.float32
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)  # latent weights stay float32
    losses = training.fit(model, data.batched("train", 32), config, num_classes=10).history["loss"]
    assert losses[-1] < 0.9 * losses[0]


def test_determinism_is_a_choice_on_by_default_on_the_cpu():
    from tensorflow.python.framework import config as tf_config

    assert training.deterministic_default() is (not tf.config.list_physical_devices("GPU"))
    try:
        assert training.seed_everything(1, False) is False and not tf_config.is_op_determinism_enabled()
        assert training.seed_everything(1, True) is True and tf_config.is_op_determinism_enabled()
        assert training.seed_everything(1) is training.deterministic_default()
    finally:
        training.seed_everything(0, True)  # as the rest of the suite expects


def test_a_recipe_says_deterministic_once():
    from lqsearch.run import recipes

    assert recipes.load_recipe("quickstart").deterministic is None
    assert recipes.load_recipe("quickstart", ["deterministic=false", "data.deterministic=false"]).deterministic is False
    with pytest.raises(recipes.RecipeError, match=r"data.deterministic.*Fix"):
        recipes.load_recipe("quickstart", ["deterministic=true", "data.deterministic=false"])
