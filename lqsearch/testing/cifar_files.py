"""Synthetic CIFAR-10 in the real download format (`cifar-10-binary.tar.gz`), prepared by tfds' own builder.

tfds' `cifar10` builder downloads `cifar-10-binary.tar.gz` and reads, under
`cifar-10-batches-bin/`, `batches.meta.txt` (the class names) and the binary batches
`data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`: records of one label
byte and 3072 pixel bytes (the red, green and blue 32x32 planes). tfds' download
manager takes a file named as the URL's file name from `DownloadConfig.manual_dir`
without downloading, so `prepare_synthetic_cifar10` runs the real builder offline.
"""
import io
import tarfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

__all__ = ["CIFAR10_ARCHIVE", "CIFAR10_CLASSES", "write_cifar10_archive", "prepare_synthetic_cifar10"]

CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_FOLDER = "cifar-10-batches-bin"
_TRAIN_FILES = tuple(f"data_batch_{index}.bin" for index in range(1, 6))


def _records(rng, labels):
    """The CIFAR binary records of random images with `labels`: label byte then R, G, B planes."""
    pixels = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
    pixels[:, 0] = np.asarray(labels, np.uint8) * 25  # the first red pixel tells the class
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], pixels], axis=1).tobytes()


def _add(tar, name, payload):
    """Add the bytes `payload` to an open tar as file `name`."""
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_cifar10_archive(folder, *, train_per_class=10, test_per_class=4, seed=0):
    """Write a tiny `cifar-10-binary.tar.gz` into `folder`.

    Arguments:
        folder: where to write the archive (created if needed).
        train_per_class: train images per class, spread over the five train batches.
        test_per_class: test images per class (`test_batch.bin`).
        seed: seed of the pixels.

    Returns:
        The `Path` of the archive.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = np.tile(np.arange(10), train_per_class)
    path = folder / CIFAR10_ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{_FOLDER}/batches.meta.txt", ("\n".join(CIFAR10_CLASSES) + "\n\n").encode())
        for name, labels in zip(_TRAIN_FILES, np.array_split(train_labels, len(_TRAIN_FILES))):
            _add(tar, f"{_FOLDER}/{name}", _records(rng, labels))
        _add(tar, f"{_FOLDER}/test_batch.bin", _records(rng, np.tile(np.arange(10), test_per_class)))
    return path


def prepare_synthetic_cifar10(data_dir, manual_dir=None, **archive_options):
    """Write the archive (unless `manual_dir` holds one) and prepare it with tfds' `cifar10` builder, offline.

    Arguments:
        data_dir: tfds data dir to prepare `cifar10` into.
        manual_dir: folder of `cifar-10-binary.tar.gz` (default: `data_dir/manual`).
        **archive_options: passed to `write_cifar10_archive`.

    Returns:
        The prepared `tfds` builder; `load_dataset("cifar10", data_dir=data_dir)` then reads it.
    """
    manual_dir = Path(manual_dir) if manual_dir is not None else Path(data_dir) / "manual"
    if not (manual_dir / CIFAR10_ARCHIVE).is_file():
        write_cifar10_archive(manual_dir, **archive_options)
    builder = tfds.builder("cifar10", data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder
