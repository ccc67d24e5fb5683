"""Stratified, seeded subsets of a labelled train set: limits and search splits."""
import numpy as np
import tensorflow as tf

from lqsearch.data.dataset import DEFAULT_SEARCH_FRACTION
from lqsearch.data.errors import DataError

__all__ = ["stratified_selection", "limit", "search_split", "tag_first_per_class"]


def stratified_selection(labels, *, count=None, per_class=None, rng):
    """Pick sorted int64 indices of a stratified random subset of `labels` (int array).

    `count` gives the exact total, shared by classes in proportion to their
    sizes (largest remainders); `per_class` instead takes that many of each
    class (all of a smaller class). `rng` is a `numpy.random.Generator`.
    """
    classes, sizes = np.unique(labels, return_counts=True)
    if per_class is not None:
        quotas = np.minimum(sizes, per_class)
    else:
        exact = sizes * count / len(labels)
        quotas = np.floor(exact).astype(np.int64)
        remainder_order = np.argsort(-(exact - quotas), kind="stable")
        quotas[remainder_order[:count - quotas.sum()]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:quota]
              for label, quota in zip(classes, quotas)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def limit(images, labels, count, rng):
    """Return a stratified subset of `count` examples (all of them if count is None)."""
    if count is None or count >= len(labels):
        return images, labels
    keep = stratified_selection(labels, count=count, rng=rng)
    return images[keep], labels[keep]


def search_split(labels, opts, rng):
    """Split train indices into disjoint (search_train, search_val), seeded and class-balanced.

    search_val holds `search_val_per_class` images of each class, or the share
    `search_fraction` of every class (default 0.1). search_train holds
    `search_train_per_class` images of each class from the rest, or all the rest.

    Raises:
        DataError: if either split would be empty.
    """
    if opts.search_val_per_class is not None:
        val = stratified_selection(labels, per_class=opts.search_val_per_class, rng=rng)
    else:
        fraction = opts.search_fraction or DEFAULT_SEARCH_FRACTION
        val = stratified_selection(labels, count=round(len(labels) * fraction), rng=rng)
    train = np.setdiff1d(np.arange(len(labels)), val)
    if opts.search_train_per_class is not None and len(train):
        train = train[stratified_selection(labels[train], per_class=opts.search_train_per_class, rng=rng)]
    if len(val) == 0 or len(train) == 0:
        raise DataError(f"the train set ({len(labels)} examples) is too small for this search "
                        f"split: search_train gets {len(train)}, search_val {len(val)}. Fix: "
                        "change search_fraction / search_val_per_class / search_train_per_class or train_limit.")
    return train, val


def tag_first_per_class(stream, num_classes, val_per_class, train_per_class=None):
    """Tag each (image, label) with its search split, in stream order, class by class.

    The first `val_per_class` images of a class are search_val; the next
    `train_per_class` (all the others when None) are search_train.

    Returns:
        A stream of (image, label, is_val, is_train).
    """
    def step(seen, example):
        image, label = example
        index = tf.cast(label, tf.int32)
        is_val = seen[index] < val_per_class
        is_train = tf.logical_not(is_val)
        if train_per_class is not None:
            is_train = tf.logical_and(is_train, seen[index] < val_per_class + train_per_class)
        return tf.tensor_scatter_nd_add(seen, [[index]], [1]), (image, label, is_val, is_train)
    return stream.scan(tf.zeros([num_classes], tf.int32), step)
