"""ImageNet search subsets selected once per data directory and stored as TFRecord shards of encoded JPEGs.

search_val is the first K train images of each class in file order, and (Shen et al.)
search_train the next N. They are selected by label from the encoded records: no
image is decoded, and the reading stops as soon as every class is full. The encoded
JPEG bytes and labels are written as TFRecord shards (temporary file, then rename;
mode 0644) with a `manifest.json` written last, in a folder named after (K, N, train
limit). A later load, a resumed run or another process finds the manifest and reads
the shards; a pass over a subset then decodes only its own images. An exclusive lock
lets one process select while the others wait.
"""
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from lqsearch import io
from lqsearch.data.errors import DataError

__all__ = ["StoredSubsets", "subset_folder", "select_subsets", "SUBSET_ROOT", "SHARD_EXAMPLES", "MANIFEST"]

#: Folder of the stored subsets, under the tfds data dir unless `subset_dir` is given.
SUBSET_ROOT = "lqsearch_subsets"
#: Examples per shard: about 110 MB of ImageNet JPEGs.
SHARD_EXAMPLES = 1024
MANIFEST = "manifest.json"
FORMAT = 1
#: Seconds a process waits for another one that selects the same subsets.
LOCK_TIMEOUT_S = 6 * 3600
_FEATURES = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}


@dataclasses.dataclass(frozen=True)
class StoredSubsets:
    """Search subsets stored in `folder`: shard files and exact counts per split ("search_val", "search_train")."""

    folder: Path
    shards: dict
    counts: dict

    def stream(self, split):
        """The stored (encoded JPEG bytes, int64 label) records of `split`, in file order, of known length."""
        files = [str(self.folder / name) for name in self.shards[split]]
        records = tf.data.TFRecordDataset(files).map(_parse, num_parallel_calls=tf.data.AUTOTUNE)
        return records.apply(tf.data.experimental.assert_cardinality(self.counts[split]))


def _parse(record):
    """One stored record as (encoded image bytes, int64 label)."""
    example = tf.io.parse_single_example(record, _FEATURES)
    return example["image"], example["label"]


def subset_folder(builder, *, subset_dir, val_per_class, train_per_class, train_limit):
    """The folder of one selection: `<subset_dir or data_dir/lqsearch_subsets>/<name>/<version>/<key>`."""
    root = Path(subset_dir) if subset_dir is not None else Path(builder.data_dir).parents[1] / SUBSET_ROOT
    key = f"val{val_per_class}_train{'rest' if train_per_class is None else train_per_class}"
    if train_limit is not None:
        key += f"_limit{train_limit}"
    return root / builder.name / str(builder.version) / key


def select_subsets(builder, ordered, folder, *, val_per_class, train_per_class, train_limit, num_classes):
    """Return the stored subsets in `folder`, selecting and writing them first if they are not there.

    Arguments:
        builder: the prepared tfds builder (its train size identifies the data).
        ordered: the train split as (encoded image bytes, label), in file order (already
            cut to `train_limit`).
        folder: from `subset_folder`.
        val_per_class: K, the first images of each class kept as search_val.
        train_per_class: N, the next images of each class kept as search_train, or None to
            store search_val only (search_train is then all the rest, streamed).
        train_limit: recorded in the manifest (it changes which records `ordered` holds).
        num_classes: number of classes.

    Returns:
        A `StoredSubsets`.

    Raises:
        DataError: the folder cannot be written (fix: `subset_dir=`).
    """
    identity = {"format": FORMAT, "dataset": builder.name, "version": str(builder.version),
                "train_examples": int(builder.info.splits["train"].num_examples), "val_per_class": val_per_class,
                "train_per_class": train_per_class, "train_limit": train_limit}
    stored = _read_manifest(folder, identity)
    if stored is not None:
        return stored
    problem = io.folder_problem(folder)
    if problem is not None:
        raise DataError(f"{builder.name}: the search subsets are stored once in {folder}, which {problem}. Fix: "
                        "set the recipe key data.subset_dir (in Python: load_dataset(..., subset_dir=)) to a "
                        "writable folder, or use a writable data_dir.")
    io.make_dirs(folder)
    with io.exclusive_lock(folder / ".lock", timeout=LOCK_TIMEOUT_S, purpose="selects the ImageNet search subsets"):
        stored = _read_manifest(folder, identity)  # another process may have written them meanwhile
        if stored is None:
            stored = _write_subsets(ordered, folder, identity, num_classes)
    return stored


def _read_manifest(folder, identity):
    """The `StoredSubsets` of `folder` if its manifest matches `identity` and its shards exist, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("identity") != identity:
        return None
    shards = manifest["shards"]
    if not all((folder / name).is_file() for names in shards.values() for name in names):
        return None
    return StoredSubsets(folder=folder, shards=shards, counts=manifest["counts"])


def _write_subsets(ordered, folder, identity, num_classes):
    """Select the subsets from the encoded records in one pass, write their shards, then the manifest."""
    val_per_class, train_per_class = identity["val_per_class"], identity["train_per_class"]
    quota = val_per_class + (train_per_class or 0)
    writers = {"search_val": _ShardWriter(folder, "search_val")}
    if train_per_class is not None:
        writers["search_train"] = _ShardWriter(folder, "search_train")
    seen = np.zeros(num_classes, np.int64)
    read, full = 0, 0
    try:
        for images, labels in ordered.batch(SHARD_EXAMPLES).as_numpy_iterator():
            for image, label in zip(images, labels):
                read += 1
                rank = seen[label]
                seen[label] += 1
                if rank < val_per_class:
                    writers["search_val"].write(image, label)
                elif rank < quota:
                    writers["search_train"].write(image, label)
                full += int(rank + 1 == quota)
            if full == num_classes:
                break  # every class is full: the rest of the train set is never read
        shards = {split: writer.close() for split, writer in writers.items()}
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    counts = {split: writer.count for split, writer in writers.items()}
    io.write_json(folder / MANIFEST, {"identity": identity, "shards": shards, "counts": counts,
                                      "records_read": read})
    return StoredSubsets(folder=folder, shards=shards, counts=counts)


class _ShardWriter:
    """Writes tf.train.Example (image bytes, label) records into shards of `SHARD_EXAMPLES`, each atomically."""

    def __init__(self, folder, split):
        self.folder, self.split = folder, split
        self.names, self.count = [], 0
        self._writer = self._tmp = None

    def write(self, image, label):
        """Append one record, opening a new shard when the current one is full."""
        if self._writer is None:
            fd, self._tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.split}.", suffix=".tmp")
            os.close(fd)
            self._writer = tf.io.TFRecordWriter(self._tmp)
        features = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))}
        self._writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
        self.count += 1
        if self.count % SHARD_EXAMPLES == 0:
            self._finish()

    def _finish(self):
        """Close the current shard and rename it into place (mode 0644)."""
        self._writer.close()
        name = f"{self.split}-{len(self.names):05d}.tfrecord"
        with open(self._tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(self._tmp, io.FILE_MODE)
        os.replace(self._tmp, self.folder / name)
        self.names.append(name)
        self._writer = self._tmp = None

    def close(self):
        """Finish the last shard; return the shard names."""
        if self._writer is not None:
            self._finish()
        return list(self.names)

    def abort(self):
        """Drop the shard being written (the manifest is not written, so nothing is reused)."""
        if self._writer is not None:
            self._writer.close()
            os.unlink(self._tmp)
            self._writer = self._tmp = None
