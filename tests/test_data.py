"""Tests for lqsearch.data: every source, the splits, augmentation (bad input: test_data_errors.py).

All offline: tfds sources run under `tfds.testing.mock_data` (ImageNet on its real
format: test_data_real_format.py), local files are written by the tests, and the real
Debian Fashion-MNIST files are used only if installed (CI installs `dataset-fashion-mnist`).
"""
import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from data_helpers import check_batch, collect, fashion_dir, image_ids, small_arrays, write_npz

from lqsearch import data
from lqsearch.data import readers

REPO_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_debian_files = pytest.mark.skipif(
    not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist is not installed")


# ----------------------------------------------------------------------------- sources

def test_list_sources_and_parse_source_accept_every_listed_name():
    names = data.list_sources()
    assert {"cifar10", "cifar100", "mnist", "fashion_mnist", "imagenet2012",
            "fashion_mnist_local", "embedded", "npz:PATH"} == set(names)
    for name in names:
        spec = data.parse_source(name)
        assert spec.kind in ("tfds", "local", "npz")
    assert data.parse_source("npz:/tmp/x.npz").path == Path("/tmp/x.npz")
    assert data.parse_source("cifar10").family == "cifar"


@pytest.mark.parametrize("source, suggestion", [("cifar-10", "cifar10"),
                                                ("fashion-mnist", "fashion_mnist"),
                                                ("imagenet", "imagenet2012")])
def test_unknown_source_lists_valid_names_and_suggests_the_closest(source, suggestion):
    with pytest.raises(data.DataError) as error:
        data.parse_source(source)
    message = str(error.value)
    assert f"Did you mean {suggestion!r}" in message
    assert "npz:PATH" in message and "embedded" in message
    assert issubclass(data.DataError, ValueError)


def test_npz_prefix_without_path_is_rejected():
    with pytest.raises(data.DataError, match="has no path"):
        data.parse_source("npz:")


def test_embedded_sample_is_a_stratified_real_sample():
    dataset = data.load_dataset("embedded", batch_size=256)
    assert (dataset.name, dataset.family, dataset.input_shape) == ("embedded", "mnist",
                                                                     (28, 28, 1))
    assert (dataset.num_train, dataset.num_test, dataset.num_classes) == (3000, 1000, 10)
    assert dataset.num_search_val == 300 and dataset.num_search_train == 2700
    assert np.bincount(dataset.arrays["train"][1]).tolist() == [300] * 10
    assert np.bincount(dataset.arrays["search_val"][1]).tolist() == [30] * 10
    images, _ = check_batch(dataset, "test")
    assert images.std() > 0.1  # real pictures, not blank
    files = REPO_ROOT / "lqsearch" / "data_files"
    npz_size = (files / "fashion_mnist_sample.npz").stat().st_size
    assert npz_size < 3 * 2**20
    assert "MIT" in (files / "LICENSE-fashion-mnist.txt").read_text()
    npz_sha256 = hashlib.sha256((files / "fashion_mnist_sample.npz").read_bytes()).hexdigest()
    assert npz_sha256 in (files / "PROVENANCE.md").read_text()


@needs_debian_files
def test_embedded_sample_is_reproduced_by_the_tool_from_debian_files():
    spec = importlib.util.spec_from_file_location(
        "make_embedded_sample", REPO_ROOT / "tools" / "make_embedded_sample.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    full = readers.read_fashion_mnist_dir(DEBIAN_DIR)
    sample = tool.draw_sample(full, train_per_class=300, test_per_class=100, seed=0)
    with np.load(REPO_ROOT / "lqsearch" / "data_files" / "fashion_mnist_sample.npz") as shipped:
        for key, array in sample.items():
            np.testing.assert_array_equal(shipped[key], array, err_msg=key)
    provenance = (REPO_ROOT / "lqsearch" / "data_files" / "PROVENANCE.md").read_text()
    assert tool.sha256(DEBIAN_DIR / "train-images-idx3-ubyte.gz") in provenance


def test_fashion_mnist_local_reads_idx_files(tmp_path):
    folder = fashion_dir(tmp_path, num_train=60, num_test=20)
    dataset = data.load_dataset("fashion_mnist_local", data_dir=folder, batch_size=16)
    assert (dataset.num_train, dataset.num_test, dataset.num_classes) == (60, 20, 10)
    assert dataset.num_search_train + dataset.num_search_val == 60
    assert dataset.num_search_val == 6
    check_batch(dataset, "train")
    test_images, test_labels = collect(dataset.test)
    assert image_ids(test_images).tolist() == list(range(1000, 1020))
    assert test_labels.tolist() == [i % 10 for i in range(20)]


def test_fashion_mnist_local_accepts_uncompressed_files(tmp_path):
    folder = fashion_dir(tmp_path)
    for gz_file in folder.glob("*.gz"):
        gz_file.with_suffix("").write_bytes(gzip.decompress(gz_file.read_bytes()))
        gz_file.unlink()
    assert data.load_dataset("fashion_mnist_local", data_dir=folder).num_train == 60


@needs_debian_files
def test_fashion_mnist_local_reads_the_debian_files():
    dataset = data.load_dataset("fashion_mnist_local", eval_batch_size=500)
    assert (dataset.num_train, dataset.num_test, dataset.num_classes) == (60000, 10000, 10)
    assert (dataset.num_search_train, dataset.num_search_val) == (54000, 6000)
    assert np.bincount(dataset.arrays["test"][1]).tolist() == [1000] * 10
    images, _ = check_batch(dataset, "search_val")
    assert images.shape == (500, 28, 28, 1)


def test_npz_source(tmp_path):
    path = write_npz(tmp_path / "mine.npz", **small_arrays(num_train=40, num_test=12))
    dataset = data.load_dataset(f"npz:{path}", batch_size=8, search_val_per_class=2)
    assert (dataset.name, dataset.family, dataset.input_shape) == ("npz", "cifar", (32, 32, 3))
    assert (dataset.num_classes, dataset.num_train, dataset.num_test) == (4, 40, 12)
    assert (dataset.num_search_val, dataset.num_search_train) == (8, 32)
    assert np.bincount(dataset.arrays["search_val"][1]).tolist() == [2, 2, 2, 2]
    check_batch(dataset, "search_train")
    assert dataset.num_batches("search_train") == 4 and dataset.num_batches("test") == 2


def test_npz_grayscale_and_column_labels(tmp_path):
    arrays = small_arrays(num_train=30, num_test=10, shape=(28, 28), num_classes=3)
    arrays["y_train"] = arrays["y_train"].reshape(-1, 1).astype(np.uint8)
    dataset = data.load_dataset(f"npz:{write_npz(tmp_path / 'g.npz', **arrays)}")
    assert (dataset.family, dataset.input_shape, dataset.num_classes) == ("mnist", (28, 28, 1), 3)


TFDS_CASES = [("cifar10", (32, 32, 3), 10, "cifar"), ("cifar100", (32, 32, 3), 100, "cifar"),
              ("mnist", (28, 28, 1), 10, "mnist"), ("fashion_mnist", (28, 28, 1), 10, "mnist")]


@pytest.mark.parametrize("name, shape, num_classes, family", TFDS_CASES)
def test_tfds_sources_under_mock_data(name, shape, num_classes, family):
    with tfds.testing.mock_data(num_examples=30):
        dataset = data.load_dataset(name, batch_size=8, download=False)
    assert (dataset.input_shape, dataset.num_classes, dataset.family) == (shape, num_classes,
                                                                        family)
    assert (dataset.num_train, dataset.num_test) == (30, 30)
    assert (dataset.num_search_train, dataset.num_search_val) == (27, 3)
    for split in data.SPLITS:
        check_batch(dataset, split)


def test_tfds_source_that_is_not_prepared_names_the_fix(tmp_path):
    with pytest.raises(data.DataError) as error:
        data.load_dataset("mnist", data_dir=tmp_path, download=False)
    assert "not prepared" in str(error.value) and "download=True" in str(error.value)
    assert str(tmp_path) in str(error.value)
    assert "data.data_dir=DIR" in str(error.value) and "dataset=embedded" in str(error.value)  # what a recipe can set


# ----------------------------------------------------------------------------- splits

def test_search_splits_are_a_disjoint_stratified_split_of_train():
    arrays = small_arrays(num_train=100, num_test=20)
    dataset = data.from_arrays(**arrays, batch_size=16, search_fraction=0.2, augment=False)
    train_ids = set(image_ids(collect(dataset.train)[0]))
    search_train_ids = set(image_ids(collect(dataset.search_train)[0]))
    search_val_ids = set(image_ids(collect(dataset.search_val)[0]))
    test_ids = set(image_ids(collect(dataset.test)[0]))
    assert train_ids == set(range(100)) and test_ids == set(range(5000, 5020))
    assert not search_train_ids & search_val_ids
    assert search_train_ids | search_val_ids == train_ids
    assert (len(search_train_ids), len(search_val_ids)) == (80, 20)
    assert (dataset.num_search_train, dataset.num_search_val) == (80, 20)
    assert np.bincount(dataset.arrays["search_val"][1]).tolist() == [5, 5, 5, 5]


def test_limits_keep_a_stratified_subset():
    dataset = data.from_arrays(**small_arrays(num_train=100, num_test=40), train_limit=40,
                               test_limit=20)
    assert (dataset.num_train, dataset.num_test, dataset.num_search_val) == (40, 20, 4)
    assert np.bincount(dataset.arrays["train"][1]).tolist() == [10] * 4
    assert np.bincount(dataset.arrays["test"][1]).tolist() == [5] * 4


def test_split_too_small_for_search_is_rejected():
    with pytest.raises(data.DataError, match="too small"):
        data.from_arrays(**small_arrays(num_train=4, num_test=4), search_fraction=0.1)


def test_same_seed_gives_the_same_batches_and_another_seed_does_not():
    def first_batch(seed):
        dataset = data.from_arrays(**small_arrays(), batch_size=16, seed=seed)
        return dataset.take_batches("train", 1)[0], dataset.arrays["search_val"][1]

    (images_a, labels_a), val_a = first_batch(3)
    (images_b, labels_b), val_b = first_batch(3)
    (images_c, _), _ = first_batch(4)
    np.testing.assert_array_equal(images_a, images_b)
    np.testing.assert_array_equal(labels_a, labels_b)
    np.testing.assert_array_equal(val_a, val_b)
    assert not np.array_equal(images_a, images_c)


def test_training_passes_are_shuffled_per_seed_and_epoch_and_never_by_history():
    dataset = data.from_arrays(**small_arrays(), batch_size=80, augment=False)

    def ids(**pass_of):
        return image_ids(collect(dataset.pipeline("train", **pass_of))[0]).tolist()

    first, second = ids(seed=1, epoch=0), ids(seed=1, epoch=1)
    assert sorted(first) == sorted(second) and first != second  # every epoch another order
    assert ids(seed=1, epoch=1) == second and ids(seed=2, epoch=1) != second  # the pass of (seed, epoch)
    assert ids() == ids()  # `dataset.train`: pass 0 under the data seed, however often it was read
    chained = image_ids(collect(dataset.seeded("train", 1).passes(1, 2))[0]).tolist()
    assert chained == second + ids(seed=1, epoch=2)  # what fit trains on, also when it resumes at epoch 1


# ----------------------------------------------------------------------------- augmentation

def test_cifar_augmentation_only_on_training_pipelines():
    arrays = small_arrays(num_train=40, num_test=20)
    plain = data.from_arrays(**arrays, batch_size=64, augment=False)
    augmented = data.from_arrays(**arrays, batch_size=64, augment=True)
    assert augmented.family == "cifar"
    for split in ("search_val", "test"):  # evaluation pipelines: untouched, in order
        images, labels = collect(augmented.pipeline(split))
        raw_images, raw_labels = augmented.arrays[split]
        np.testing.assert_allclose(images, raw_images / 255.0, atol=1e-6)
        np.testing.assert_array_equal(labels, raw_labels)
    for split in ("train", "search_train"):  # same shuffle order, different pixels
        plain_images, plain_labels = collect(plain.pipeline(split))
        aug_images, aug_labels = collect(augmented.pipeline(split))
        np.testing.assert_array_equal(plain_labels, aug_labels)
        assert aug_images.shape == plain_images.shape
        assert not np.allclose(plain_images, aug_images)
        assert not np.allclose(collect(augmented.pipeline(split, epoch=1))[0], aug_images)  # new epoch
        np.testing.assert_array_equal(collect(augmented.pipeline(split))[0], aug_images)  # same pass, same pixels
        raw = np.sort(plain.arrays[split][0].reshape(len(plain_images), -1) / 255.0, axis=0)
        np.testing.assert_allclose(np.sort(plain_images.reshape(len(raw), -1), axis=0), raw,
                                   atol=1e-6)


def test_mnist_family_is_not_augmented():
    arrays = small_arrays(num_train=40, num_test=10, shape=(28, 28), num_classes=4)
    dataset = data.from_arrays(**arrays, batch_size=64, augment=True)
    assert dataset.family == "mnist"
    images, _ = collect(dataset.train)
    assert sorted(image_ids(images)) == list(range(40))
    by_id = images[np.argsort(image_ids(images))]
    np.testing.assert_allclose(by_id[..., 0], arrays["x_train"] / 255.0, atol=1e-6)


def test_image_size_resizes_mnist_like_data(tmp_path):
    dataset = data.load_dataset("fashion_mnist_local", data_dir=fashion_dir(tmp_path),
                                image_size=32, batch_size=8)
    assert dataset.input_shape == (32, 32, 1)
    for split in data.SPLITS:
        assert check_batch(dataset, split)[0].shape[1:] == (32, 32, 1)


def test_family_override_adds_cifar_augmentation_to_grayscale():
    arrays = small_arrays(num_train=40, num_test=10, shape=(28, 28), num_classes=4)
    plain = data.from_arrays(**arrays, batch_size=64, augment=False, family="cifar")
    augmented = data.from_arrays(**arrays, batch_size=64, family="cifar")
    assert augmented.family == "cifar"
    assert not np.allclose(collect(plain.train)[0], collect(augmented.train)[0])


def test_download_is_on_by_default_only_for_sources_tfds_can_download(tmp_path, monkeypatch):
    import lqsearch.data.loading as loading

    asked = []

    def fake_read(name, *, data_dir, download):
        asked.append((name, download))
        raise data.DataError("stop here")

    monkeypatch.setattr(loading.tfds_source, "read_tfds_arrays", fake_read)
    monkeypatch.setattr(loading, "_read_tfds", lambda name, **kw: fake_read(name, **kw))
    assert data.DataConfig().download is None
    for name in ("cifar10", "cifar100", "mnist", "fashion_mnist"):
        for download in (None, False, True):
            with pytest.raises(data.DataError):
                data.load_dataset(name, data_dir=tmp_path, download=download)
    assert asked == [(name, download) for name in ("cifar10", "cifar100", "mnist", "fashion_mnist")
                     for download in (True, False, True)]  # None: on
    with pytest.raises(data.DataError, match=r"imagenet2012.*cannot be downloaded.*manual_dir"):
        data.load_dataset("imagenet2012", data_dir=tmp_path, download=True)


def test_a_failed_download_keeps_the_offline_message(tmp_path, monkeypatch):
    def no_network(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
    with pytest.raises(data.DataError, match=r"download or preparation .* failed .*Fix: check the network, or use an "
                                             r"offline source such as 'fashion_mnist_local' or 'embedded'"):
        data.load_dataset("mnist", data_dir=tmp_path)


def test_the_test_suite_refuses_the_network():
    import socket

    with socket.socket() as sock, pytest.raises(OSError, match="must not use the network"):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never reached, refused before any packet
