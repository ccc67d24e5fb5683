"""Small data files and pipelines for the data tests (tests/test_data*.py)."""
import gzip
import struct

import numpy as np

from lqsearch.data import readers


def write_idx(path, array, magic=None):
    """Write a uint8 array as a gzip IDX file (magic defaults to the array's rank)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())
    return path


def tagged_images(count, shape=(28, 28), start=0):
    """Images whose first two pixels encode their id (start..start+count-1) in base 256."""
    images = np.random.default_rng(start).integers(0, 256, size=(count, *shape), dtype=np.uint8)
    ids = np.arange(start, start + count)
    images.reshape(count, -1)[:, 0] = ids // 256
    images.reshape(count, -1)[:, 1] = ids % 256
    return images


def image_ids(images):
    """Decode the ids written by `tagged_images` (uint8 or [0, 1] float images)."""
    flat = np.round(np.asarray(images, dtype=np.float64).reshape(len(images), -1)
                    * (255 if np.asarray(images).dtype != np.uint8 else 1))
    return (flat[:, 0] * 256 + flat[:, 1]).astype(np.int64)


def fashion_dir(tmp_path, num_train=60, num_test=20):
    """Write a small Fashion-MNIST-like IDX folder; labels cycle over 10 classes."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    files = readers.FASHION_MNIST_FILES
    write_idx(folder / files["x_train"], tagged_images(num_train))
    write_idx(folder / files["y_train"], np.arange(num_train) % 10)
    write_idx(folder / files["x_test"], tagged_images(num_test, start=1000))
    write_idx(folder / files["y_test"], np.arange(num_test) % 10)
    return folder


def small_arrays(num_train=80, num_test=20, shape=(32, 32, 3), num_classes=4):
    """Tagged uint8 images and cycling labels for `data.from_arrays`."""
    return {"x_train": tagged_images(num_train, shape),
            "y_train": np.arange(num_train) % num_classes,
            "x_test": tagged_images(num_test, shape, start=5000),
            "y_test": np.arange(num_test) % num_classes}


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def collect(pipeline):
    """Concatenate a whole pipeline into numpy (images, labels)."""
    batches = [(x.numpy(), y.numpy()) for x, y in pipeline]
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def check_batch(dataset, split):
    """Check the first batch of a pipeline: shape, dtypes, value range, labels."""
    images, labels = dataset.take_batches(split, 1)[0]
    assert images.shape[1:] == dataset.input_shape
    assert images.dtype == np.float32 and labels.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert 0 <= labels.min() and labels.max() < dataset.num_classes
    return images, labels


class DecodeCounter:
    """Counts, at run time, the images decoded by tf.image / tf.io decode ops (see `count_decodes`)."""

    NAMES = ("decode_image", "decode_jpeg", "decode_and_crop_jpeg")

    def __init__(self):
        self.count = 0
        self.by_name = dict.fromkeys(self.NAMES, 0)

    def _tick(self, name):
        self.count += 1
        self.by_name[name] += 1
        return np.int32(0)

    def wrap(self, decode, name):
        """`decode`, plus a side effect that counts each call of the traced op (each image decoded)."""
        import tensorflow as tf

        def counted(*args, **kwargs):
            image = decode(*args, **kwargs)
            tick = tf.py_function(lambda: self._tick(name), [], tf.int32)
            with tf.control_dependencies([tick]):
                return tf.identity(image)
        return counted


def count_decodes(monkeypatch):
    """Patch every public decode op of tf.image and tf.io with a counting wrapper; returns the `DecodeCounter`.

    Patch BEFORE building the pipelines (tfds and lqsearch look the ops up when their map
    functions are traced); `counter.count` then grows by one per decoded image.
    """
    import tensorflow as tf

    counter = DecodeCounter()
    for module in (tf.image, tf.io):
        for name in DecodeCounter.NAMES:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counter.wrap(getattr(module, name), name))
    return counter
