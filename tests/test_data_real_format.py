"""The data path on data in the real on-disk format: ImageNet tar files and the CIFAR-10 archive, via tfds' builders.

The session fixtures `synthetic_imagenet` and `synthetic_cifar10` (tests/conftest.py)
prepare them once with tfds' own builders; nothing is mocked and nothing is downloaded.
"""
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from data_helpers import check_batch, collect, count_decodes

from lqsearch import data, training
from lqsearch.data import pipelines, subsets
from lqsearch.run import recipes, runner
from lqsearch.testing.imagenet_files import imagenet_synsets, imagenet_validation_synsets


def test_synthetic_imagenet_is_prepared_by_the_tfds_builder(synthetic_imagenet):
    builder = tfds.builder("imagenet2012", data_dir=str(synthetic_imagenet.data_dir))
    assert builder.info.splits["train"].num_examples == 1000 * synthetic_imagenet.per_class
    assert builder.info.splits["validation"].num_examples == synthetic_imagenet.val_images
    assert builder.info.features["label"].names == imagenet_synsets()
    train = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    labels = np.array([example["label"] for example in train.as_numpy_iterator()])
    assert np.bincount(labels, minlength=1000).tolist() == [synthetic_imagenet.per_class] * 1000
    val = sorted((example["file_name"].decode(), int(example["label"]))
                 for example in builder.as_dataset(split="validation").as_numpy_iterator())
    names = builder.info.features["label"].names
    assert [names[label] for _, label in val] == imagenet_validation_synsets(synthetic_imagenet.val_images)
    assert val[0][0] == "ILSVRC2012_val_00000001.JPEG"
    print(f"synthetic ImageNet written and prepared in {synthetic_imagenet.prepare_seconds:.1f} s")


def test_synthetic_cifar10_loads_offline_through_load_dataset(synthetic_cifar10):
    dataset = data.load_dataset("cifar10", data_dir=synthetic_cifar10.data_dir, batch_size=16, augment=False,
                                download=False)
    assert (dataset.num_train, dataset.num_test, dataset.num_classes) == (100, 40, 10)
    images, labels = dataset.arrays["train"]
    np.testing.assert_array_equal(images[:, 0, 0, 0] // 25, labels)  # the writer's class marker
    assert collect(dataset.test)[0].shape == (40, 32, 32, 3)


@pytest.mark.parametrize("split", ["search_train", "search_val", "train", "test"])
def test_imagenet_splits_yield_their_stated_counts(synthetic_imagenet, split):
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, batch_size=64,
                                image_size=16, search_train_per_class=2, search_val_per_class=1)
    images, labels = collect(dataset.pipeline(split))
    assert len(labels) == dataset.num_examples(split) and images.shape[1:] == (16, 16, 3)
    if split.startswith("search"):
        per_class = 2 if split == "search_train" else 1
        assert np.bincount(labels, minlength=1000).tolist() == [per_class] * 1000


def test_resnet18_imagenet_width_data_has_known_lengths_at_the_presets_batch(synthetic_imagenet):
    """Issue 20: the recipe's data with only sizes overridden; the preset's batch equals the data batch (256)."""
    recipe = recipes.load_recipe("resnet18_imagenet_width", [
        f"data.data_dir={synthetic_imagenet.data_dir}", "data.image_size=16",
        "data.search_train_per_class=2", "data.search_val_per_class=1"])
    dataset = runner.load_data(recipe)
    config = recipe.evaluation.training
    assert config.batch_size == dataset.batch_size == 256
    for split in data.SPLITS:
        batch = config.batch_size if split in ("train", "search_train") else dataset.eval_batch_size
        assert training.steps_in(dataset.batched(split, batch), config) == dataset.num_batches(split), split
    assert sum(1 for _ in dataset.batched("search_train", config.batch_size)) == dataset.num_batches("search_train")


@pytest.mark.parametrize("train_per_class", [2, None], ids=["shen_subsets", "phan_rest"])
def test_a_pass_over_a_search_split_decodes_only_its_own_images(synthetic_imagenet, monkeypatch, train_per_class):
    """Shen: 1 + 2 per class stored subsets; Phan: 1 per class search_val, search_train all the rest."""
    decodes = count_decodes(monkeypatch)
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, batch_size=64, image_size=16,
                                search_val_per_class=1, search_train_per_class=train_per_class)
    for split in ("search_val", "search_train"):
        before = decodes.count
        used = sum(len(labels) for _, labels in dataset.pipeline(split))
        ratio = (decodes.count - before) / used
        print(f"{split} ({train_per_class=}): {decodes.count - before} decodes for {used} images = {ratio:.2f}")
        assert used == dataset.num_examples(split) and ratio <= 1.1, (split, ratio)


# ----------------------------------------------------------------------------- search subsets stored once

def _subset_options(synthetic_imagenet, subset_dir, **options):
    return dict(data_dir=synthetic_imagenet.data_dir, subset_dir=subset_dir, batch_size=64, image_size=16,
                search_val_per_class=1, search_train_per_class=2, **options)


@pytest.mark.slow
def test_search_subsets_are_stored_once_as_encoded_shards_and_reused(synthetic_imagenet, tmp_path, monkeypatch):
    first = data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path))
    folder = tmp_path / "imagenet2012" / "5.1.0" / "val1_train2"
    shards = sorted(folder.glob("*.tfrecord"))
    assert [path.name for path in shards] == ["search_train-00000.tfrecord", "search_train-00001.tfrecord",
                                              "search_val-00000.tfrecord"]  # 2,000 = 1,024 + 976; 1,000
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in [*shards, folder / subsets.MANIFEST])
    assert not list(folder.glob(".*.tmp"))
    written = {path: path.stat().st_mtime_ns for path in shards}
    monkeypatch.setattr(subsets, "_write_subsets", lambda *args: pytest.fail("selected again"))
    again = data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path))  # e.g. a resumed run
    assert {path: path.stat().st_mtime_ns for path in shards} == written
    np.testing.assert_array_equal(np.sort(collect(first.search_val)[1]), np.arange(1000))
    np.testing.assert_array_equal(np.sort(collect(again.search_val)[1]), np.arange(1000))
    assert (again.num_search_train, again.num_search_val) == (2000, 1000)


@pytest.mark.slow
def test_an_interrupted_selection_leaves_nothing_that_is_reused(synthetic_imagenet, tmp_path, monkeypatch):
    write = subsets._ShardWriter.write
    calls = []

    def dying_write(self, image, label):
        calls.append(1)
        if len(calls) == 1500:
            raise KeyboardInterrupt
        write(self, image, label)

    monkeypatch.setattr(subsets._ShardWriter, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path))
    folder = tmp_path / "imagenet2012" / "5.1.0" / "val1_train2"
    assert not (folder / subsets.MANIFEST).exists() and not list(folder.glob(".*.tmp"))
    monkeypatch.setattr(subsets._ShardWriter, "write", write)
    dataset = data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path))
    assert len(collect(dataset.search_train)[1]) == 2000


@pytest.mark.slow
def test_search_subsets_are_the_first_images_of_each_class_in_file_order(synthetic_imagenet, tmp_path):
    limit = 1500  # in file order, so some classes have fewer than 3 images
    dataset = data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path, train_limit=limit))
    ordered = tfds.builder("imagenet2012", data_dir=str(synthetic_imagenet.data_dir)).as_dataset(
        split="train", shuffle_files=False, as_supervised=True, decoders={"image": tfds.decode.SkipDecoding()})
    expected, seen = {"search_val": [], "search_train": []}, np.zeros(1000, int)
    for image, label in ordered.take(limit).as_numpy_iterator():
        if seen[label] < 3:
            expected["search_val" if seen[label] == 0 else "search_train"].append((image, label))
        seen[label] += 1
    folder = tmp_path / "imagenet2012" / "5.1.0" / f"val1_train2_limit{limit}"
    manifest = json.loads((folder / subsets.MANIFEST).read_text())
    stored = subsets.StoredSubsets(folder=folder, shards=manifest["shards"], counts=manifest["counts"])
    for split, records in expected.items():
        assert list(stored.stream(split).as_numpy_iterator()) == records
        assert dataset.num_examples(split) == len(records)
        assert len(collect(dataset.pipeline(split))[1]) == len(records)
    assert dataset.num_train == limit


def test_a_subset_folder_that_cannot_be_written_names_the_fix(synthetic_imagenet, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(data.DataError, match="subset_dir="):
        data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, blocker))


# ----------------------------------------------------------------------------- ImageNet options and errors

@pytest.mark.slow
def test_imagenet_pipelines_yield_float_images_in_the_unit_range(synthetic_imagenet, tmp_path):
    dataset = data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path, test_limit=24,
                                                                  deterministic=True))
    assert (dataset.family, dataset.input_shape, dataset.num_classes, dataset.arrays) == (
        "imagenet", (16, 16, 3), 1000, None)
    assert (dataset.num_train, dataset.num_search_train, dataset.num_search_val, dataset.num_test) == (
        3000, 2000, 1000, 24)
    for split in data.SPLITS:
        images, labels = check_batch(dataset, split)
        assert images.shape == (min(64, dataset.num_examples(split)), 16, 16, 3)
    # Asked to be deterministic, evaluation pipelines give the same batches; ImageNet's default is throughput.
    np.testing.assert_array_equal(collect(dataset.test)[0], collect(dataset.test)[0])
    assert dataset.test.options().deterministic
    default = data.load_dataset("imagenet2012", **_subset_options(synthetic_imagenet, tmp_path))
    assert not any(default.pipeline(split).options().deterministic for split in data.SPLITS)


def test_every_pass_runs_with_fixed_parallelism_and_no_autotuning(synthetic_imagenet):
    # tf.data's model-based autotuning made the ImageNet training passes bimodal (half of them on one
    # core, bench/bench_imagenet_path.py part 2); the pipelines fix their parallelism instead.
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, search_val_per_class=1,
                                batch_size=4, image_size=16)
    passes = [dataset.seeded("train", 0).passes(0, 1), dataset.pipeline("search_val"), dataset.test]
    for options in (pipeline.options() for pipeline in passes):
        assert not options.autotune.enabled
        assert options.threading.private_threadpool_size == pipelines.pipeline_threads() >= 2


def test_imagenet2012_default_crop_is_224(synthetic_imagenet):
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, search_val_per_class=1,
                                batch_size=4)
    assert dataset.input_shape == (224, 224, 3)
    assert check_batch(dataset, "train")[0].shape == (4, 224, 224, 3)


def test_imagenet2012_errors(synthetic_imagenet, tmp_path):
    with pytest.raises(data.DataError, match="manual_dir="):
        data.load_dataset("imagenet2012", data_dir=tmp_path / "unprepared")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DataError, match="missing ILSVRC2012_img_train.tar") as error:
        data.load_dataset("imagenet2012", data_dir=tmp_path / "unprepared", manual_dir=empty)
    assert str(empty) in str(error.value)
    with pytest.raises(data.DataError, match="search_val_per_class"):
        data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, search_fraction=0.1)
    with pytest.raises(data.DataError, match="cannot hold"):  # 3 images per class, all of them in search_val
        data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, subset_dir=tmp_path / "subsets",
                          search_val_per_class=3)


# ----------------------------------------------------------------------------- ImageNet input throughput

def test_imagenet_crops_decode_only_their_window(synthetic_imagenet, monkeypatch):
    decodes = count_decodes(monkeypatch)
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, batch_size=256, image_size=16,
                                search_val_per_class=1, search_train_per_class=2)
    for split in ("search_train", "search_val"):
        collect(dataset.pipeline(split))
    assert decodes.by_name == {"decode_image": 0, "decode_jpeg": 0, "decode_and_crop_jpeg": 3000}


def test_the_fused_centre_crop_matches_resizing_then_cropping():
    from lqsearch.data import pipelines

    rng = np.random.default_rng(0)
    for height, width in ((300, 400), (500, 333), (64, 64)):
        smooth = np.kron(rng.integers(0, 256, size=(height // 16 + 1, width // 16 + 1, 3)), np.ones((16, 16, 1)))
        encoded = tf.io.encode_jpeg(smooth[:height, :width].astype(np.uint8), quality=95)
        fused = pipelines._decode_centre_crop(encoded, (224, 224)).numpy()
        reference = pipelines._resize_centre_crop(tf.io.decode_jpeg(encoded), (224, 224)).numpy()
        assert fused.shape == reference.shape == (224, 224, 3) and fused.dtype == reference.dtype == np.uint8
        error = np.mean(np.abs(fused.astype(float) - reference))
        print(f"{height}x{width}: mean |fused - reference| = {error:.2f}")
        assert error < 6.0, (height, width)
