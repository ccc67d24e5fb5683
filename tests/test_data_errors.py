"""Tests for lqsearch.data's bad input: broken files and options give one clear `DataError`."""
import gzip

import numpy as np
import pytest
from data_helpers import fashion_dir, small_arrays, write_idx, write_npz

from lqsearch import data


def break_missing_file(folder):
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    return "t10k-labels-idx1-ubyte.gz", "not found"


def break_truncated_gzip(folder):
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return path.name, "truncated or corrupt"


def break_not_gzip(folder):
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip at all")
    return "train-labels-idx1-ubyte.gz", "truncated or corrupt"


def break_magic(folder):
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(60) % 10, magic=0x00000803)
    return "train-labels-idx1-ubyte.gz", "magic number"


def break_short_payload(folder):
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    return path.name, "truncated"


def break_counts(folder):
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(59) % 10)
    return "train-labels-idx1-ubyte.gz", "59 labels"


def break_label_range(folder):
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(20, 12))
    return "t10k-labels-idx1-ubyte.gz", "out of range 0..9"


@pytest.mark.parametrize("breaker", [break_missing_file, break_truncated_gzip, break_not_gzip,
                                     break_magic, break_short_payload, break_counts,
                                     break_label_range])
def test_broken_idx_files_raise_one_clear_error(tmp_path, breaker):
    folder = fashion_dir(tmp_path)
    file_name, problem = breaker(folder)
    with pytest.raises(data.DataError) as error:
        data.load_dataset("fashion_mnist_local", data_dir=folder)
    message = str(error.value)
    assert file_name in message and problem in message
    assert error.value.__cause__ is None


def test_missing_idx_directory(tmp_path):
    with pytest.raises(data.DataError, match="directory not found") as error:
        data.load_dataset("fashion_mnist_local", data_dir=tmp_path / "nowhere")
    assert "nowhere" in str(error.value)


NPZ_BREAKS = {
    "missing key": (lambda a: a.pop("y_test"), "missing key(s) 'y_test'"),
    "negative label": (lambda a: a["y_train"].__setitem__(3, -1), "negative label -1"),
    "label out of range": (lambda a: a["y_test"].__setitem__(0, 9), "out of range 0..3"),
    "float labels": (lambda a: a.update(y_train=a["y_train"] + 0.5), "labels must be integers"),
    "float images": (lambda a: a.update(x_train=a["x_train"] / 255.0), "expected uint8"),
    "bad shape": (lambda a: a.update(x_test=a["x_test"].reshape(len(a["x_test"]), -1)),
                  "has shape"),
    "two channels": (lambda a: a.update(x_train=a["x_train"][..., :2]), "has shape"),
    "count mismatch": (lambda a: a.update(y_train=a["y_train"][:-1]), "holds 39 labels"),
}


@pytest.mark.parametrize("case", sorted(NPZ_BREAKS))
def test_broken_npz_raises_one_clear_error(tmp_path, case):
    arrays = small_arrays(num_train=40, num_test=12)
    breaker, problem = NPZ_BREAKS[case]
    breaker(arrays)
    path = write_npz(tmp_path / "broken.npz", **arrays)
    with pytest.raises(data.DataError) as error:
        data.load_dataset(f"npz:{path}")
    message = str(error.value)
    assert str(path) in message and problem in message
    if case == "missing key":
        assert "x_train, y_train, x_test, y_test" in message and "not a readable" not in message


def test_npz_file_missing_or_not_an_npz(tmp_path):
    with pytest.raises(data.DataError, match="npz file not found") as error:
        data.load_dataset(f"npz:{tmp_path / 'absent.npz'}")
    assert "absent.npz" in str(error.value)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(data.DataError, match="not a readable .npz") as error:
        data.load_dataset(f"npz:{garbage}")
    assert str(garbage) in str(error.value)
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.zeros(3, np.uint8))
    with pytest.raises(data.DataError, match="single array") as error:
        data.load_dataset(f"npz:{single}")
    assert str(single) in str(error.value)
    arrays = small_arrays()
    arrays["y_train"] = np.array([str(i) for i in range(80)], dtype=object)
    pickled = write_npz(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(data.DataError, match="not a readable .npz") as error:
        data.load_dataset(f"npz:{pickled}")
    assert str(pickled) in str(error.value)


@pytest.mark.parametrize("options, problem", [
    ({"search_fraction": 1.5}, r"'search_fraction' is out of range: 1.5; allowed values are in \(0, 1\)"),
    ({"search_fraction": 0.2, "search_val_per_class": 3}, "not both"),
    ({"batch_size": 0}, "'batch_size' is out of range: 0; allowed values are >= 1"),
    ({"family": "faces"}, "'family' must be one of cifar, imagenet, mnist, got 'faces'"),
    ({"image_size": (1, 2, 3)}, "image_size"),
    ({"train_limit": -5}, "train_limit"),
    ({"seed": -1}, "'seed' is out of range: -1; allowed values are >= 0"),
    ({"search_fraction": float("nan")}, "'search_fraction' must be a finite number, got nan"),
    ({"search_fraction": "half"}, "search_fraction"),
])
def test_bad_options_raise_data_error(options, problem):
    with pytest.raises(data.DataError, match=problem):
        data.from_arrays(**small_arrays(), **options)


def test_unknown_split_name():
    dataset = data.from_arrays(**small_arrays(num_train=20, num_test=4))
    with pytest.raises(data.DataError, match="split must be one of train, search_train, search_val, test"):
        dataset.pipeline("validation")


def test_an_inferred_class_count_needs_every_class_present():
    arrays = small_arrays(num_train=40, num_test=8)
    arrays["y_train"] = np.where(arrays["y_train"] == 2, 3, arrays["y_train"])  # class 2 never occurs
    with pytest.raises(data.DataError, match=r"4 classes, but 1 of them never occur \(2\).*num_classes"):
        data.from_arrays(**arrays)
    assert data.from_arrays(**arrays, num_classes=4).num_classes == 4  # stated: a class may be missing


def test_one_stray_label_does_not_make_a_million_classes(tmp_path):
    arrays = small_arrays(num_train=40, num_test=8)
    arrays["y_train"][7] = 10**6
    with pytest.raises(data.DataError, match=r"go up to 1000000 \(index 7\)") as error:
        data.load_dataset(f"npz:{write_npz(tmp_path / 'stray.npz', **arrays)}")
    assert "stray.npz" in str(error.value)
    arrays["y_train"][7] = 2**40
    with pytest.raises(data.DataError, match="too large for a class index"):
        data.from_arrays(**arrays)


def test_an_npz_may_state_its_class_count(tmp_path):
    arrays = small_arrays(num_train=40, num_test=8, num_classes=3)
    dataset = data.load_dataset(f"npz:{write_npz(tmp_path / 'k.npz', **arrays, num_classes=np.array(5))}")
    assert dataset.num_classes == 5
    with pytest.raises(data.DataError, match="'num_classes' must be one integer >= 2"):
        data.load_dataset(f"npz:{write_npz(tmp_path / 'bad.npz', **arrays, num_classes=np.array([5, 6]))}")
