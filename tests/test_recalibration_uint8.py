"""The one-shot recalibration batches are saved and held as uint8 when that is exact, with unchanged results.

A uint8 source's batches are stored as uint8 pixels (a quarter of float32's bytes) and converted back
by the pipelines' own `images_to_float`: the accuracies equal those of the float32 batches bit for bit.
A run directory saved before, with float32 batches, still loads; batches off the pixel grid stay float32.
"""
import gc
import io
import shutil
import weakref

import numpy as np
import pytest

import lqsearch.spaces
from lqsearch import data, training
from lqsearch.pixels import exact_uint8, images_to_float
from lqsearch.search import evaluation
from lqsearch.search.evaluation import RECALIBRATION_FILE, EvaluationConfig, make_evaluator
from lqsearch.supernet import recalibrate_batchnorm

CONFIG = EvaluationConfig(mode="oneshot", supernet_steps=3, recalibration_batches=2)
SEED = 1


@pytest.fixture(scope="module")
def small_data():
    return data.load_dataset("embedded", batch_size=32, train_limit=300, test_limit=60, search_fraction=0.3,
                             image_size=16, seed=0)


@pytest.fixture(scope="module")
def space():
    return lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)


def _evaluator(space, dataset, run_dir):
    bound = space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="bireal")
    evaluator = make_evaluator(bound, dataset, CONFIG, run_dir=run_dir, seed=SEED)
    evaluator.prepare()
    return evaluator


@pytest.fixture(scope="module")
def prepared(space, small_data, tmp_path_factory):
    """A prepared one-shot evaluator (supernet trained, batches drawn) and its run directory."""
    run_dir = tmp_path_factory.mktemp("run") / "tuner"
    return _evaluator(space, small_data, run_dir), run_dir


def _float_batches(dataset):
    """The batches the evaluator draws, as float32 numpy (what it held and saved before)."""
    seed = training.derive_seed(SEED, "recalibration")
    pipeline = dataset.pipeline("search_train", seed=seed).take(CONFIG.recalibration_batches)
    return [(x.numpy(), y.numpy()) for x, y in pipeline]


def _genomes(space):
    return [space.uniform(1), space.uniform(2), space.genome([0.5, 1, 1, 1, 1, 0.5])]


def _float_path_accuracy(evaluator, dataset, genome, batches):
    return float(evaluator.supernet.evaluate(genome, dataset.search_val, recalibration_data=batches))


def _save_npz(path, batches):
    arrays = {"count": np.array(len(batches))}
    for index, (x, y) in enumerate(batches):
        arrays[f"x{index}"], arrays[f"y{index}"] = x, y
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def test_images_to_float_is_the_pipelines_conversion_and_exact_uint8_inverts_it_only_on_the_grid():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    floats = np.asarray(images_to_float(pixels))
    assert floats.dtype == np.float32 and floats.min() == 0.0 and floats.max() == 1.0
    np.testing.assert_array_equal(exact_uint8(floats), pixels)
    assert exact_uint8(floats + np.float32(1e-3)) is None  # off the pixel grid: a float source
    assert exact_uint8(np.float32([np.nan, 0.0])) is None
    assert exact_uint8(np.float32([-1.0, 0.0])) is None and exact_uint8(np.float32([2.0])) is None
    assert exact_uint8(floats.astype(np.float64)) is None


@pytest.mark.slow
def test_batches_of_a_uint8_source_are_saved_as_uint8_in_a_quarter_of_the_bytes(prepared, small_data):
    evaluator, run_dir = prepared
    floats = _float_batches(small_data)
    assert [x.dtype for x, _ in evaluator.recalibration] == [np.uint8] * 2
    with np.load(run_dir / RECALIBRATION_FILE) as saved:
        assert [saved[f"x{i}"].dtype for i in range(2)] == [np.uint8] * 2
        for index, (x, y) in enumerate(floats):
            np.testing.assert_array_equal(saved[f"y{index}"], y)  # labels as drawn
            assert saved[f"y{index}"].dtype == y.dtype
            # converted back by the pipelines' function: the drawn floats, bit for bit
            restored = np.asarray(images_to_float(saved[f"x{index}"]))
            assert restored.tobytes() == x.tobytes()
    held = sum(x.nbytes for x, _ in evaluator.recalibration)
    assert held * 4 == sum(x.nbytes for x, _ in floats)
    legacy = run_dir.parent / "legacy.npz"
    _save_npz(legacy, floats)
    assert (run_dir / RECALIBRATION_FILE).stat().st_size < 0.3 * legacy.stat().st_size


@pytest.mark.slow
def test_accuracies_with_uint8_batches_equal_the_float32_path_bit_for_bit(prepared, small_data, space):
    evaluator, _ = prepared
    floats = _float_batches(small_data)
    for genome in _genomes(space):
        assert evaluator.evaluate(genome)[0] == _float_path_accuracy(evaluator, small_data, genome, floats)
    # The static model of a best trial is recalibrated on the same batches.
    genome = space.uniform(2)
    model = evaluator.model_for(genome)
    reference = evaluator.supernet.extract(genome)
    recalibrate_batchnorm(reference, floats)
    for mine, theirs in zip(model.get_weights(), reference.get_weights()):
        assert mine.tobytes() == theirs.tobytes()


@pytest.mark.slow
def test_only_one_batch_exists_as_float_at_a_time(prepared, space, monkeypatch):
    evaluator, _ = prepared
    made, alive_at_each_conversion = [], []

    def converting(images):
        gc.collect()
        alive_at_each_conversion.append(sum(ref() is not None for ref in made))
        result = images_to_float(images)
        made.append(weakref.ref(result))
        return result

    monkeypatch.setattr(evaluation, "images_to_float", converting)
    evaluator.evaluate(space.uniform(1))
    evaluator.model_for(space.uniform(2))
    assert alive_at_each_conversion == [0, 0, 0, 0]  # 2 batches per recalibration, converted as used


@pytest.mark.slow
def test_a_float32_file_saved_before_still_loads_and_gives_the_same_accuracies(prepared, small_data, space, tmp_path):
    evaluator, run_dir = prepared
    floats = _float_batches(small_data)
    legacy_dir = tmp_path / "tuner"
    shutil.copytree(run_dir / "supernet", legacy_dir / "supernet")  # the trained supernet
    _save_npz(legacy_dir / RECALIBRATION_FILE, floats)  # the format of runs started before uint8 storage
    before = (legacy_dir / RECALIBRATION_FILE).read_bytes()
    resumed = _evaluator(space, small_data, legacy_dir)
    assert (legacy_dir / RECALIBRATION_FILE).read_bytes() == before  # read, not redrawn
    assert [x.dtype for x, _ in resumed.recalibration] == [np.uint8] * 2  # held compactly all the same
    for genome in _genomes(space):
        assert resumed.evaluate(genome)[0] == evaluator.evaluate(genome)[0]


@pytest.mark.slow
def test_batches_off_the_pixel_grid_stay_float32(prepared, small_data, space, tmp_path):
    evaluator, run_dir = prepared
    offset = [(np.clip(x + np.float32(0.3 / 255), 0, 1).astype(np.float32), y) for x, y in _float_batches(small_data)]
    float_dir = tmp_path / "tuner"
    shutil.copytree(run_dir / "supernet", float_dir / "supernet")
    _save_npz(float_dir / RECALIBRATION_FILE, offset)
    resumed = _evaluator(space, small_data, float_dir)
    assert [x.dtype for x, _ in resumed.recalibration] == [np.float32] * 2
    genome = space.uniform(1)
    assert resumed.evaluate(genome)[0] == _float_path_accuracy(evaluator, small_data, genome, offset)
