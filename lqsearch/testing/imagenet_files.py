"""Synthetic ImageNet in the real on-disk format (ILSVRC2012 tar files), prepared by tfds' own builder.

`write_imagenet_tars` writes the two files tfds' `imagenet2012` builder reads from
its `manual_dir`, with the real names and layout:

- `ILSVRC2012_img_train.tar`: one nested `<synset>.tar` per class for all 1000
  synsets of tfds' `labels.txt`, each with `per_class` small JPEGs named
  `<synset>_<i>.JPEG`;
- `ILSVRC2012_img_val.tar`: `ILSVRC2012_val_%08d.JPEG` for the first `val_images`
  numbers. tfds labels validation files by zipping the SORTED names of the tar with
  `validation_labels.txt`, so a prefix of the real names gets its real labels.

`prepare_synthetic_imagenet` then runs `tfds.builder("imagenet2012").download_and_prepare`
with that `manual_dir`: the same code path as a real ImageNet, without the network.
Every JPEG has its own size (sides from `min_side` to `max_side`) and a colour that
depends on its class, so crops, resizes and labels are exercised as on real data.
"""
import io
import tarfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

__all__ = ["TRAIN_TAR", "VAL_TAR", "imagenet_synsets", "imagenet_validation_synsets", "write_imagenet_tars",
           "prepare_synthetic_imagenet"]

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
VAL_NAME = "ILSVRC2012_val_{:08d}.JPEG"
_LABELS = "datasets/imagenet2012/labels.txt"
_VALIDATION_LABELS = "datasets/imagenet2012/validation_labels.txt"


def _tfds_lines(relative):
    """The non-empty lines of a text file shipped inside the installed tensorflow_datasets package."""
    return tfds.core.tfds_path(relative).read_text().split()


def imagenet_synsets():
    """The 1000 synsets of tfds' imagenet2012 `labels.txt`, in label order (label i is entry i)."""
    return _tfds_lines(_LABELS)


def imagenet_validation_synsets(count):
    """The synsets of the validation images 1..`count`, from tfds' `validation_labels.txt`."""
    return _tfds_lines(_VALIDATION_LABELS)[:count]


def _jpeg(rng, label, *, min_side, max_side, quality=90):
    """Encode one small RGB JPEG whose mean colour depends on `label`; returns bytes."""
    height, width = (int(side) for side in rng.integers(min_side, max_side + 1, size=2))
    base = np.array([(label * 37) % 256, (label * 91) % 256, (label * 173) % 256], np.int64)
    noise = rng.integers(-24, 25, size=(height, width, 3))
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(image, quality=quality).numpy()


def _add(tar, name, payload):
    """Add the bytes `payload` to an open tar as file `name`."""
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_imagenet_tars(manual_dir, *, per_class=3, val_images=100, seed=0, min_side=24, max_side=48):
    """Write a tiny ILSVRC2012 in the real format into `manual_dir`.

    Arguments:
        manual_dir: folder to write `ILSVRC2012_img_train.tar` and `ILSVRC2012_img_val.tar` into
            (created if needed).
        per_class: train JPEGs per synset (all 1000 synsets get that many).
        val_images: validation JPEGs: `ILSVRC2012_val_00000001.JPEG` up to this number (at most 50,000).
        seed: seed of the image sizes and pixels.
        min_side, max_side: range of the image heights and widths, in pixels.

    Returns:
        The `Path` of `manual_dir`.

    Raises:
        ValueError: `per_class` < 1, or `val_images` outside 1..50,000.
    """
    if per_class < 1 or not 1 <= val_images <= 50_000:
        raise ValueError(f"per_class must be >= 1 and val_images in 1..50000, got {per_class}, {val_images}.")
    manual_dir = Path(manual_dir)
    manual_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sides = {"min_side": min_side, "max_side": max_side}
    with tarfile.open(manual_dir / TRAIN_TAR, "w") as train:
        for label, synset in enumerate(imagenet_synsets()):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as nested:
                for index in range(per_class):
                    _add(nested, f"{synset}_{index + 1}.JPEG", _jpeg(rng, label, **sides))
            _add(train, f"{synset}.tar", inner.getvalue())
    labels = {synset: label for label, synset in enumerate(imagenet_synsets())}
    with tarfile.open(manual_dir / VAL_TAR, "w") as val:
        for number, synset in enumerate(imagenet_validation_synsets(val_images), start=1):
            _add(val, VAL_NAME.format(number), _jpeg(rng, labels[synset], **sides))
    return manual_dir


def prepare_synthetic_imagenet(data_dir, manual_dir=None, **tar_options):
    """Write the tar files (unless `manual_dir` already holds them) and prepare them with tfds' builder.

    Arguments:
        data_dir: tfds data dir to prepare `imagenet2012` into.
        manual_dir: folder of the tar files (default: `data_dir/manual`).
        **tar_options: passed to `write_imagenet_tars` (per_class, val_images, seed, sides).

    Returns:
        The prepared `tfds` builder (`builder.info.splits` tells the sizes).
    """
    manual_dir = Path(manual_dir) if manual_dir is not None else Path(data_dir) / "manual"
    if not all((manual_dir / name).is_file() for name in (TRAIN_TAR, VAL_TAR)):
        write_imagenet_tars(manual_dir, **tar_options)
    builder = tfds.builder("imagenet2012", data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder
