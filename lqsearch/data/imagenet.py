"""ImageNet (tfds `imagenet2012`), streamed from disk, never cached."""
import numpy as np
import tensorflow_datasets as tfds

from lqsearch.data import tfds_source
from lqsearch.data.dataset import DEFAULT_IMAGENET_PER_CLASS, Dataset
from lqsearch.data.errors import DataError
from lqsearch.data.pipelines import IMAGENET_CROP, build_pipeline
from lqsearch.data.splits import tag_first_per_class

__all__ = ["load_imagenet", "IMAGENET_MANUAL_FILES"]

IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


def load_imagenet(name, opts, *, data_dir, manual_dir):
    """Stream ImageNet from tfds; search_val holds the first K images per class, search_train the next N.

    ImageNet stays on disk: nothing is cached, `arrays` is None, and the split
    is made in file order (tfds writes the train records in a shuffled order,
    so the first images of a class are a random sample of it); the seed drives
    shuffling and augmentation. K is `search_val_per_class` (default 50) and N
    `search_train_per_class` (default: all the other images). Shen et al.'s
    protocol is N = 50 (their 50,000-image search subset) with a separate K.
    Without train_limit, the counts assume that every class has at least K + N
    train images (ImageNet-1k has at least 732).

    Raises:
        DataError: search_fraction or a non-ImageNet family was asked for, the
            data are not prepared, or the split would be empty.
    """
    if opts.search_fraction is not None or opts.family not in (None, "imagenet"):
        raise DataError(f"{name} streams from disk: use search_val_per_class (default "
                        f"{DEFAULT_IMAGENET_PER_CLASS}), not search_fraction, and no family.")
    builder = tfds.builder(name, data_dir=data_dir)
    tfds_source.prepare_imagenet(builder, manual_dir, IMAGENET_MANUAL_FILES)
    num_classes = builder.info.features["label"].num_classes
    per_class = opts.search_val_per_class or DEFAULT_IMAGENET_PER_CLASS
    train_per_class = opts.search_train_per_class
    ordered = tfds_source.tfds_stream(builder, "train", shuffle_files=False)
    test = tfds_source.tfds_stream(builder, "validation", shuffle_files=False)
    if opts.train_limit:
        ordered = ordered.take(opts.train_limit)
        counts = tfds_source.count_labels(builder, "train", limit=opts.train_limit,
                                   num_classes=num_classes)
        num_train, num_val = int(counts.sum()), int(np.minimum(counts, per_class).sum())
        rest = np.maximum(counts - per_class, 0)
        num_search_train = int(rest.sum() if train_per_class is None else np.minimum(rest, train_per_class).sum())
        train = ordered
    else:
        num_train, num_val = tfds_source.split_size(builder, ordered, "train"), per_class * num_classes
        num_search_train = num_train - num_val if train_per_class is None else train_per_class * num_classes
        train = tfds_source.tfds_stream(builder, "train", shuffle_files=True,
                                 read_config=tfds.ReadConfig(shuffle_seed=opts.seed))
    test = test.take(opts.test_limit) if opts.test_limit else test
    if not 0 < num_val < num_train or num_search_train <= 0:
        raise DataError(f"{name}: {num_train} train images cannot hold search_val_per_class="
                        f"{per_class} x {num_classes} classes and leave some for search_train."
                        " Fix: lower search_val_per_class or raise train_limit.")
    tagged = tag_first_per_class(ordered, num_classes, per_class, train_per_class)
    streams = {"train": train, "test": test,
               "search_train": tagged.filter(lambda image, label, is_val, is_train: is_train),
               "search_val": tagged.filter(lambda image, label, is_val, is_train: is_val)}
    counts = {"train": num_train, "search_train": num_search_train, "search_val": num_val,
              "test": tfds_source.split_size(builder, test, "validation")}
    size = opts.image_size or (IMAGENET_CROP, IMAGENET_CROP)
    pipelines = {
        split: build_pipeline(stream.map(lambda image, label, *_: (image, label)),
                              split=split, family="imagenet", size=size, opts=opts,
                              native_size=None, num_examples=counts[split])
        for split, stream in streams.items()}
    return Dataset(name=name, family="imagenet", input_shape=(*size, 3),
                   num_classes=num_classes, num_train=num_train,
                   num_search_train=counts["search_train"], num_search_val=num_val,
                   num_test=counts["test"], batch_size=opts.batch_size,
                   eval_batch_size=opts.eval_batch_size, **pipelines)
