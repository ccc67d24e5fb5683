"""Images reach the device as uint8: the training passes yield pixels, the trainers convert them in their step.

`lqsearch.pixels.images_to_float` gives the same bits in a tf.data map, eagerly and in a traced
step, so a training fed uint8 batches equals the same training fed the float batches, bit for bit,
and saved models still take float images in [0, 1].
"""
import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import data, training
from lqsearch.pixels import PIXEL_LEVELS, exact_uint8, float_input, images_to_float, is_pixels

LEVELS = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)


def test_every_pixel_level_converts_to_the_same_bits_eagerly_in_a_traced_step_and_in_a_tf_data_map():
    eager = (tf.cast(LEVELS, tf.float32) / 255.0).numpy()  # what the pipelines computed before
    traced = tf.function(images_to_float)(tf.constant(LEVELS)).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensors(LEVELS).map(images_to_float))).numpy()
    for converted in (images_to_float(LEVELS).numpy(), traced, mapped):
        assert converted.dtype == np.float32
        np.testing.assert_array_equal(converted.view(np.uint32), eager.view(np.uint32))
    assert PIXEL_LEVELS[0] == 0.0 and PIXEL_LEVELS[255] == 1.0
    np.testing.assert_array_equal(exact_uint8(eager), LEVELS)


@pytest.fixture(scope="module")
def small_data():
    return data.load_dataset("embedded", batch_size=32, train_limit=256, test_limit=64, search_fraction=0.25,
                             image_size=16, seed=0)


def test_the_training_passes_yield_uint8_the_float_passes_of_the_same_batches(small_data):
    seeded = small_data.seeded("train", 3)
    pixels = seeded.passes(1, 1)
    assert is_pixels(pixels) and pixels.element_spec[1].dtype == tf.int32
    floats = small_data.sources["train"].passes(3, batch_size=seeded.batch_size, first_epoch=1)
    assert not is_pixels(floats) and floats.element_spec[0].dtype == tf.float32
    for (x8, y8), (xf, yf) in zip(pixels, floats):
        np.testing.assert_array_equal(images_to_float(x8).numpy(), xf.numpy())
        np.testing.assert_array_equal(y8.numpy(), yf.numpy())


@pytest.mark.parametrize("split", ["search_val", "test"])
def test_the_scoring_passes_yield_uint8_the_float_batches_of_the_evaluation_splits(small_data, split):
    scoring = small_data.scoring_pass(split)
    assert is_pixels(scoring) and int(scoring.cardinality()) == small_data.num_batches(split)
    for (x8, y8), (xf, yf) in zip(scoring, small_data.pipeline(split)):
        np.testing.assert_array_equal(images_to_float(x8).numpy(), xf.numpy())
        np.testing.assert_array_equal(y8.numpy(), yf.numpy())


def test_the_search_and_the_study_score_on_uint8_passes(small_data, monkeypatch, tmp_path):
    from lqsearch.run import final
    from lqsearch.search.evaluation import EvaluationConfig, make_evaluator

    scored = []
    real_evaluate = training.evaluate

    def evaluate(model, pipeline, **kwargs):
        scored.append(pipeline.element_spec[0].dtype)
        return real_evaluate(model, pipeline, **kwargs)

    monkeypatch.setattr(training, "evaluate", evaluate)
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    bound = space.bind(input_shape=small_data.input_shape, num_classes=small_data.num_classes, quantizer="bireal")
    config = EvaluationConfig(mode="scratch", epochs=1, training=training.preset("cpu", steps_per_epoch=1))
    make_evaluator(bound, small_data, config, run_dir=tmp_path, seed=1).evaluate(space.uniform(1))
    final.retrain(space, space.uniform(1), small_data, training.preset("cpu", epochs=1, steps_per_epoch=1),
                  quantizer="bireal", out_dir=tmp_path / "final")
    assert scored == [tf.uint8, tf.uint8]  # search_val, then test (float32 on the old code)


class _FloatSplit:
    """The same passes as a `SeededSplit`, as float batches made on the host (the pipelines' old output)."""

    def __init__(self, seeded):
        self.seeded, self.num_batches = seeded, seeded.num_batches

    def passes(self, first_epoch, epochs, steps=None):
        return self.seeded.source.passes(self.seeded.seed, batch_size=self.seeded.batch_size,
                                         first_epoch=first_epoch, epochs=epochs, steps=steps)


def _model(small_data):
    tf.keras.utils.set_random_seed(5)
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    return space.build(space.uniform(1), input_shape=small_data.input_shape, num_classes=small_data.num_classes,
                       quantizer="bireal")


@pytest.mark.slow
def test_fit_on_uint8_batches_equals_fit_on_the_float_batches_bit_for_bit(small_data):
    config = training.preset("cpu", epochs=2, batch_size=32, steps_per_epoch=4)
    seeded = small_data.seeded("train", 3)
    trained = {}
    for name, train in (("pixels", seeded), ("floats", _FloatSplit(seeded))):
        model = _model(small_data)
        history = training.fit(model, train, config, num_classes=small_data.num_classes)
        trained[name] = (history.history["loss"], model.get_weights(), model)
    assert trained["pixels"][0] == trained["floats"][0]
    for a, b in zip(trained["pixels"][1], trained["floats"][1]):
        np.testing.assert_array_equal(a, b)
    model = trained["pixels"][2]
    assert model.input.dtype == tf.float32  # the model itself still takes float images in [0, 1]
    assert int(model.optimizer.iterations.numpy()) == 8  # the optimizer that trained it is the model's
    float_test = small_data.test
    pixel_test = float_test.map(lambda x, y: (tf.cast(tf.round(x * 255.0), tf.uint8), y))
    on_device = training.evaluate(model, pixel_test, num_classes=small_data.num_classes)
    assert on_device == training.evaluate(model, float_test, num_classes=small_data.num_classes)


def test_float_input_shares_the_weights_and_converts_pixels(small_data):
    model = _model(small_data)
    wrapped = float_input(model)
    assert wrapped.input.dtype == tf.uint8 and not set(map(id, wrapped.weights)) ^ set(map(id, model.weights))
    images = np.random.default_rng(0).integers(0, 256, (4, *small_data.input_shape), dtype=np.uint8)
    np.testing.assert_array_equal(wrapped(images, training=False).numpy(),
                                  model(images_to_float(images), training=False).numpy())


def test_fit_refuses_validation_batches_of_another_dtype(small_data):
    config = training.preset("cpu", epochs=1, batch_size=32, steps_per_epoch=1)
    with pytest.raises(ValueError, match="different dtypes"):
        training.fit(_model(small_data), small_data.seeded("train", 1), config, num_classes=small_data.num_classes,
                     validation=small_data.search_val)
