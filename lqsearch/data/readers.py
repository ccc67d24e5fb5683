"""Readers that turn a dataset source into checked numpy arrays.

IDX `.gz` files (Fashion-MNIST, as the Debian package `dataset-fashion-mnist`
installs them), `.npz` files and the embedded sample. Every reader reports bad
input as one `lqsearch.data.DataError` that names the file, what is wrong with
it and how to fix it.
"""
import gzip
import importlib.resources
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lqsearch.data.errors import DataError

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the
# number of dimensions.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_NUM_CLASSES = 10
NPZ_REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: Optional `.npz` key: the class count, when some classes have no train example (labels 0..K-1 otherwise).
NPZ_NUM_CLASSES_KEY = "num_classes"
EMBEDDED_FILE = "fashion_mnist_sample.npz"
ALLOWED_CHANNELS = (1, 3)


def read_gzip_bytes(path):
    """Read and decompress a whole `.gz` file (or a plain file without `.gz`).

    Arguments:
        path: file to read.

    Returns:
        The decompressed bytes.

    Raises:
        DataError: the file is missing, unreadable or truncated/corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found. Fix: check the directory, or reinstall "
                          "the Debian package `dataset-fashion-mnist`.")
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: the gzip stream is truncated or corrupt ({error}). "
                          "Fix: download or copy the file again.") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error}).") from None


def parse_idx(raw, *, expected_magic, path):
    """Decode the bytes of an IDX file of unsigned bytes.

    Arguments:
        raw: the decompressed file content.
        expected_magic: `IDX_IMAGES_MAGIC` or `IDX_LABELS_MAGIC`.
        path: the file name, for error messages.

    Returns:
        A uint8 array of shape (N, H, W) for images or (N,) for labels.

    Raises:
        DataError: wrong magic number, or fewer/more bytes than the header says.
    """
    kind = "images (idx3)" if expected_magic == IDX_IMAGES_MAGIC else "labels (idx1)"
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes, too short for an IDX header.")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise DataError(
            f"{path}: IDX magic number is 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"for {kind}. Fix: check that this is the right file (images vs labels) and "
            "that it is an IDX file.")
    ndim = expected_magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes).")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected_size = header_size + int(np.prod(shape))
    if len(raw) != expected_size:
        raise DataError(
            f"{path}: IDX header announces shape {shape} ({expected_size} bytes) but the "
            f"file holds {len(raw)} bytes. Fix: the file is truncated or padded; copy it again.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx_file(path, *, expected_magic):
    """Read one IDX file (`.gz` or plain).

    Arguments:
        path: file to read.
        expected_magic: `IDX_IMAGES_MAGIC` or `IDX_LABELS_MAGIC`.

    Returns:
        The uint8 array stored in the file.

    Raises:
        DataError: see `read_gzip_bytes` and `parse_idx`.
    """
    return parse_idx(read_gzip_bytes(path), expected_magic=expected_magic, path=path)


def _idx_path(directory, file_name):
    """Locate `file_name` in `directory`, falling back on the name without `.gz`."""
    path = Path(directory) / file_name
    plain = path.with_suffix("")
    return plain if not path.exists() and plain.exists() else path


def read_fashion_mnist_dir(directory):
    """Read the four Fashion-MNIST IDX files of a directory.

    Arguments:
        directory: folder holding `train-images-idx3-ubyte.gz`,
            `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
            `t10k-labels-idx1-ubyte.gz` (uncompressed files are accepted too).

    Returns:
        A dict with keys `x_train`, `y_train`, `x_test`, `y_test`, checked by
        `check_arrays` (images of shape (N, 28, 28, 1)).

    Raises:
        DataError: a file is missing or malformed, counts differ, or labels are
            out of range.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory}: Fashion-MNIST directory not found. Fix: `apt-get install "
            "dataset-fashion-mnist`, or pass data_dir= a folder with the four IDX .gz files.")
    arrays, paths = {}, {}
    for key, file_name in FASHION_MNIST_FILES.items():
        paths[key] = _idx_path(directory, file_name)
        magic = IDX_IMAGES_MAGIC if key.startswith("x") else IDX_LABELS_MAGIC
        arrays[key] = read_idx_file(paths[key], expected_magic=magic)
    for split in ("train", "test"):
        images, labels = paths[f"x_{split}"], paths[f"y_{split}"]
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise DataError(
                f"{labels}: holds {len(arrays[f'y_{split}'])} labels but {images} holds "
                f"{len(arrays[f'x_{split}'])} images. Fix: use an image file and a label "
                "file from the same release.")
    return check_arrays(arrays, where=str(directory), num_classes=FASHION_MNIST_NUM_CLASSES,
                        file_names={key: str(path) for key, path in paths.items()})


def read_npz(path):
    """Read a `.npz` file with `x_train`, `y_train`, `x_test` and `y_test`.

    Arguments:
        path: the `.npz` file. Images are uint8 of shape (N, H, W) or
            (N, H, W, C) with C in {1, 3}; labels are integers 0..K-1, every
            class present in `y_train` unless the optional scalar key
            `num_classes` states K.

    Returns:
        A dict of the four arrays, checked by `check_arrays`.

    Raises:
        DataError: missing or unreadable file, missing key, bad dtype, shape
            or labels.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: npz file not found. Fix: check the path after 'npz:'.")
    unreadable = (f"{path}: not a readable .npz file ({{}}). Fix: write it with np.savez or "
                  "np.savez_compressed, storing plain uint8 images and integer labels.")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as error:
        raise DataError(unreadable.format(error)) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(unreadable.format("it holds a single array, not an archive"))
    with npz:
        missing = [key for key in NPZ_REQUIRED_KEYS if key not in npz.files]
        if missing:
            raise DataError(
                f"{path}: missing key(s) {', '.join(repr(k) for k in missing)}; found "
                f"{sorted(npz.files)}. Fix: save all required keys "
                f"{', '.join(NPZ_REQUIRED_KEYS)}, e.g. np.savez(path, x_train=..., "
                "y_train=..., x_test=..., y_test=...).")
        try:
            arrays = {key: npz[key] for key in NPZ_REQUIRED_KEYS}
            stated = npz[NPZ_NUM_CLASSES_KEY] if NPZ_NUM_CLASSES_KEY in npz.files else None
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as error:
            raise DataError(unreadable.format(error)) from None
    num_classes = None
    if stated is not None:
        if stated.shape != () or not np.issubdtype(stated.dtype, np.integer) or int(stated) < 2:
            raise DataError(f"{path}: {NPZ_NUM_CLASSES_KEY!r} must be one integer >= 2, got {stated!r}. Fix: "
                            "np.savez(path, ..., num_classes=10), or leave it out when every class 0..K-1 occurs "
                            "in y_train.")
        num_classes = int(stated)
    return check_arrays(arrays, where=str(path), num_classes=num_classes)


def _check_images(images, *, key, where):
    """Check one image array and give it a channel axis.

    Arguments:
        images: array to check.
        key: its name (`x_train` or `x_test`), for error messages.
        where: the file or source the array came from.

    Returns:
        A uint8 array of shape (N, H, W, C).

    Raises:
        DataError: not uint8, wrong rank, empty, or unsupported channel count.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DataError(
            f"{where}: {key!r} has dtype {images.dtype}, expected uint8 pixels 0..255. "
            "Fix: convert, e.g. (x * 255).round().astype(np.uint8) for images in [0, 1].")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in ALLOWED_CHANNELS or len(images) == 0:
        raise DataError(
            f"{where}: {key!r} has shape {images.shape}, expected a non-empty (N, H, W) or "
            f"(N, H, W, C) array with C in {ALLOWED_CHANNELS}.")
    return images


def _check_labels(labels, *, key, where, num_classes):
    """Check one label array.

    Arguments:
        labels: array to check, shape (N,) or (N, 1).
        key: its name (`y_train` or `y_test`), for error messages.
        where: the file or source the array came from.
        num_classes: labels must lie in 0..num_classes-1 (None: no upper bound).

    Returns:
        An int32 array of shape (N,).

    Raises:
        DataError: non-integer dtype, wrong shape, negative or too large labels.
    """
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{where}: {key!r} has dtype {labels.dtype}; labels must be integers 0..K-1. "
            "Fix: store class indices, e.g. y.astype(np.int64) (or argmax of one-hot rows).")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{where}: {key!r} has shape {labels.shape}, expected (N,) class "
                          "indices. Fix: use argmax(axis=1) for one-hot labels.")
    if labels.size and labels.min() < 0:
        position = int(np.argmin(labels))
        raise DataError(f"{where}: {key!r} holds the negative label {labels[position]} at "
                          f"index {position}. Fix: labels must be class indices 0..K-1.")
    if labels.size and labels.max() > np.iinfo(np.int32).max:
        position = int(np.argmax(labels))
        raise DataError(f"{where}: {key!r} holds the label {labels[position]} at index {position}, too large for "
                        "a class index. Fix: labels must be class indices 0..K-1.")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        position = int(np.argmax(labels))
        raise DataError(f"{where}: {key!r} holds the label {labels[position]} at index "
                          f"{position}, out of range 0..{num_classes - 1}. Fix: labels must "
                          f"be class indices below the number of classes ({num_classes}).")
    return labels.astype(np.int32)


def check_arrays(arrays, *, where, num_classes=None, file_names=None):
    """Check and normalize the four arrays of a dataset.

    Arguments:
        arrays: dict with `x_train`, `y_train`, `x_test`, `y_test`.
        where: file or source name used in error messages.
        num_classes: number of classes, or None to infer max(y_train) + 1.
        file_names: optional per-key file names that replace `where` in messages.

    Returns:
        A new dict: images uint8 (N, H, W, C), labels int32 (N,), plus the key
        `num_classes`.

    Raises:
        DataError: see `_check_images` and `_check_labels`; also counts that
            differ, train/test image shapes that differ, or test labels the
            train set has no class for.
    """
    file_names = file_names or {}
    checked = {}
    for key in ("x_train", "x_test"):
        checked[key] = _check_images(arrays[key], key=key, where=file_names.get(key, where))
    if num_classes is None:
        train_labels = _check_labels(arrays["y_train"], key="y_train", where=where,
                                     num_classes=None)
        num_classes = int(train_labels.max()) + 1 if train_labels.size else 0
        _check_every_class_present(train_labels, num_classes, where=file_names.get("y_train", where))
    for key in ("y_train", "y_test"):
        checked[key] = _check_labels(arrays[key], key=key, where=file_names.get(key, where),
                                     num_classes=num_classes)
    for split in ("train", "test"):
        if len(checked[f"x_{split}"]) != len(checked[f"y_{split}"]):
            raise DataError(
                f"{where}: 'x_{split}' holds {len(checked[f'x_{split}'])} images but "
                f"'y_{split}' holds {len(checked[f'y_{split}'])} labels. Fix: give one label "
                "per image.")
    if checked["x_train"].shape[1:] != checked["x_test"].shape[1:]:
        raise DataError(f"{where}: train images have shape {checked['x_train'].shape[1:]} "
                          f"but test images {checked['x_test'].shape[1:]}. Fix: use one "
                          "image size for both splits.")
    checked["num_classes"] = num_classes
    return checked


def _check_every_class_present(labels, num_classes, *, where):
    """With an inferred class count (max label + 1), every class 0..K-1 must occur in the train labels.

    Otherwise one stray label (say 10**6 among 0..9) would silently make a classifier of a million classes.

    Raises:
        DataError: naming the missing classes, the largest label and the two fixes.
    """
    present = np.unique(labels)
    if present.size == num_classes:
        return
    # The first few missing classes: among the first present.size + 5 integers at least 5 are missing
    # (or all of the missing ones), so this stays small even for a label of 2**31 - 1.
    missing = np.setdiff1d(np.arange(min(num_classes, present.size + 5)), present)
    count = num_classes - present.size
    position = int(np.argmax(labels))
    shown = ", ".join(str(c) for c in missing[:5]) + (", ..." if count > 5 else "")
    raise DataError(
        f"{where}: 'y_train' labels go up to {labels[position]} (index {position}), so there would be "
        f"{num_classes} classes, but {count} of them never occur ({shown}); a stray or shifted label? "
        "Fix: make the labels 0..K-1 with every class present, or state the class count (the key "
        f"{NPZ_NUM_CLASSES_KEY!r} in the .npz, or from_arrays(num_classes=K)).")


def read_embedded():
    """Read the Fashion-MNIST sample shipped in `lqsearch/data_files/`.

    Returns:
        The checked arrays (see `check_arrays`).

    Raises:
        DataError: the file is missing from the installed package.
    """
    resource = importlib.resources.files("lqsearch") / "data_files" / EMBEDDED_FILE
    if not resource.is_file():
        raise DataError(f"{resource}: the embedded sample is missing from the installed "
                          "package. Fix: reinstall lqsearch (the file ships as package data).")
    with importlib.resources.as_file(resource) as path:
        return read_npz(path)
