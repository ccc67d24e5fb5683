"""tfds datasets as streams or checked arrays; ImageNet prepared from manual tar files.

Nothing here downloads unless the caller asked (`download=True`; `load_dataset` asks by default for the
sources tfds can download, `DataConfig.download`); tests switch it off and use
`tfds.testing.mock_data`, and for ImageNet the real tar format (`lqsearch.testing.imagenet_files`).
"""
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from lqsearch.data.errors import DataError
from lqsearch.data.readers import check_arrays

__all__ = ["tfds_stream", "read_tfds_arrays", "prepare_imagenet", "split_size"]


def tfds_stream(builder, split, **as_dataset_kwargs):
    """Open one split of a prepared tfds builder as a supervised stream.

    Arguments:
        builder: a `tfds.core.DatasetBuilder`.
        split: split name.
        **as_dataset_kwargs: passed on to `builder.as_dataset`.

    Returns:
        A `tf.data.Dataset` of (image, label).

    Raises:
        DataError: the dataset is not prepared in the builder's data dir.
    """
    try:
        return builder.as_dataset(split=split, as_supervised=True, **as_dataset_kwargs)
    except AssertionError:
        raise DataError(
            f"tfds dataset {builder.name!r} is not prepared in {builder.data_dir}. Fix: pass "
            f"download=True (needs network), run `tfds build {builder.name} --data_dir DIR` "
            "and pass data_dir=DIR, or use an offline source such as 'fashion_mnist_local' "
            "or 'embedded'.") from None


def read_tfds_arrays(name, *, data_dir, download):
    """Read a small tfds dataset (CIFAR, MNIST-like) into checked numpy arrays.

    Arguments:
        name: tfds dataset name with "train" and "test" splits.
        data_dir: tfds data dir, or None for the tfds default.
        download: call `download_and_prepare` first (may use the network).

    Returns:
        The checked arrays (see `check_arrays`).

    Raises:
        DataError: not prepared (and download is False), download failed, or
            the prepared files cannot be read.
    """
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        try:
            builder.download_and_prepare()
        except Exception as error:  # pylint: disable=broad-except  # tfds/network boundary
            raise DataError(
                f"tfds dataset {name!r}: download or preparation into {builder.data_dir} "
                f"failed ({type(error).__name__}: {error}). Fix: check the network, or use "
                "an offline source such as 'fashion_mnist_local' or 'embedded'.") from None
    arrays = {}
    for split in ("train", "test"):
        stream = tfds_stream(builder, split, shuffle_files=False)
        try:
            chunks = [(x.numpy(), y.numpy()) for x, y in stream.batch(4096)]
        except tf.errors.OpError as error:
            raise DataError(f"tfds dataset {name!r}: cannot read split {split!r} in "
                              f"{builder.data_dir} ({error.message}). Fix: rebuild it with "
                              "`tfds build`.") from None
        if not chunks:
            raise DataError(f"tfds dataset {name!r}: split {split!r} in {builder.data_dir} "
                              "is empty. Fix: rebuild it with `tfds build`.")
        arrays[f"x_{split}"] = np.concatenate([images for images, _ in chunks])
        arrays[f"y_{split}"] = np.concatenate([labels for _, labels in chunks])
    num_classes = builder.info.features["label"].num_classes
    return check_arrays(arrays, where=f"tfds:{name}", num_classes=num_classes)


def prepare_imagenet(builder, manual_dir, required_files):
    """Make sure an ImageNet tfds builder is prepared, from manual files if needed.

    Arguments:
        builder: the `imagenet2012` tfds builder.
        manual_dir: folder with the ILSVRC2012 tar files, or None.
        required_files: the file names `manual_dir` must hold.

    Raises:
        DataError: not prepared and no usable manual_dir, or preparation failed.
    """
    if (builder.data_path / "dataset_info.json").exists():
        return
    files = ", ".join(required_files)
    if manual_dir is None:
        raise DataError(
            f"tfds dataset {builder.name!r} is not prepared in {builder.data_dir}. Fix: pass "
            f"manual_dir= a folder holding {files} (no network needed), or data_dir= a tfds "
            "data dir where it is already prepared.")
    missing = [name for name in required_files if not (Path(manual_dir) / name).is_file()]
    if missing:
        raise DataError(f"{manual_dir}: missing {', '.join(missing)}. Fix: download them "
                          f"from image-net.org into this folder (it needs {files}).")
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as error:  # pylint: disable=broad-except  # tfds boundary
        raise DataError(f"{manual_dir}: preparing {builder.name!r} into {builder.data_dir} "
                          f"failed ({type(error).__name__}: {error}). Fix: check that the "
                          f"tar files are complete ({files}).") from None


def split_size(builder, stream, split):
    """Return the number of examples of `stream`, from its cardinality or the tfds info."""
    size = int(stream.cardinality())
    return size if size >= 0 else int(builder.info.splits[split].num_examples)
