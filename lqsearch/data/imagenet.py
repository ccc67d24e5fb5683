"""ImageNet (tfds `imagenet2012`), streamed from disk as encoded JPEGs; search subsets stored once."""
import tensorflow as tf
import tensorflow_datasets as tfds

from lqsearch.data import subsets, tfds_source
from lqsearch.data.dataset import DEFAULT_IMAGENET_PER_CLASS, Dataset
from lqsearch.data.errors import DataError
from lqsearch.data.pipelines import IMAGENET_CROP, build_pipeline
from lqsearch.data.splits import tag_first_per_class

__all__ = ["load_imagenet", "IMAGENET_MANUAL_FILES"]

IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
_ENCODED = {"image": tfds.decode.SkipDecoding()}


def load_imagenet(name, opts, *, data_dir, manual_dir, subset_dir=None):
    """Stream ImageNet from tfds; search_val holds the first K images per class, search_train the next N.

    Every split is read as encoded JPEG bytes and decoded in its pipeline, after any
    selection, so a pass decodes only the images it uses. The split is made in file
    order (tfds writes the train records in a shuffled order, so the first images of a
    class are a random sample of it); the seed drives shuffling and augmentation. K is
    `search_val_per_class` (default 50) and N `search_train_per_class` (default: all the
    other images). Shen et al.'s protocol is N = 50 (their 50,000-image search subset)
    with a separate K. search_val (and search_train when N is given) is selected once,
    without decoding, and stored as encoded shards (`lqsearch.data.subsets`) under
    `subset_dir` (default: `<data_dir>/lqsearch_subsets`); later loads reuse them. The
    counts are exact: a class with fewer than K + N images gives what it has.

    Raises:
        DataError: search_fraction or a non-ImageNet family was asked for, the data are
            not prepared, the subset folder cannot be written, or a split would be empty.
    """
    if opts.search_fraction is not None or opts.family not in (None, "imagenet"):
        raise DataError(f"{name} streams from disk: use search_val_per_class (default "
                        f"{DEFAULT_IMAGENET_PER_CLASS}), not search_fraction, and no family.")
    builder = tfds.builder(name, data_dir=data_dir)
    tfds_source.prepare_imagenet(builder, manual_dir, IMAGENET_MANUAL_FILES)
    num_classes = builder.info.features["label"].num_classes
    per_class = opts.search_val_per_class or DEFAULT_IMAGENET_PER_CLASS
    train_per_class = opts.search_train_per_class
    ordered = tfds_source.tfds_stream(builder, "train", shuffle_files=False, decoders=_ENCODED)
    test = tfds_source.tfds_stream(builder, "validation", shuffle_files=False, decoders=_ENCODED)
    num_train = tfds_source.split_size(builder, ordered, "train")
    if opts.train_limit:
        ordered = ordered.take(opts.train_limit)
        num_train = min(num_train, opts.train_limit)
        train = ordered
    else:
        # Files in one seeded order for every pass (not reshuffled per iteration: a pass must not depend on
        # how often the stream was read before); each pass's buffer shuffle is keyed by (seed, epoch).
        train = tfds_source.tfds_stream(builder, "train", shuffle_files=True, decoders=_ENCODED,
                                        read_config=tfds.ReadConfig(shuffle_seed=opts.seed,
                                                                    shuffle_reshuffle_each_iteration=False))
    folder = subsets.subset_folder(builder, subset_dir=subset_dir, val_per_class=per_class,
                                   train_per_class=train_per_class, train_limit=opts.train_limit)
    stored = subsets.select_subsets(builder, ordered, folder, val_per_class=per_class,
                                    train_per_class=train_per_class, train_limit=opts.train_limit,
                                    num_classes=num_classes)
    num_val = stored.counts["search_val"]
    if train_per_class is None:  # all the rest: tagged by label from the encoded records, decoded after
        tagged = tag_first_per_class(ordered, num_classes, per_class)
        search_train = tagged.filter(lambda image, label, is_val, is_train: is_train).map(
            lambda image, label, *_: (image, label))
        num_search_train = num_train - num_val
    else:
        search_train, num_search_train = stored.stream("search_train"), stored.counts["search_train"]
    if not 0 < num_val < num_train or num_search_train <= 0:
        raise _too_small(name, num_train, per_class, num_classes)
    test = test.take(opts.test_limit) if opts.test_limit else test
    streams = {"train": train, "test": test, "search_train": search_train, "search_val": stored.stream("search_val")}
    counts = {"train": num_train, "search_train": num_search_train, "search_val": num_val,
              "test": tfds_source.split_size(builder, test, "validation")}
    size = opts.image_size or (IMAGENET_CROP, IMAGENET_CROP)
    sources = {
        split: build_pipeline(stream.map(lambda image, label: (image, tf.cast(label, tf.int32))),
                              split=split, family="imagenet", size=size, opts=opts,
                              native_size=None, num_examples=counts[split], encoded=True)
        for split, stream in streams.items()}
    pipelines = {split: source.passes(opts.seed) for split, source in sources.items()}
    return Dataset(name=name, family="imagenet", input_shape=(*size, 3),
                   num_classes=num_classes, num_train=num_train,
                   num_search_train=num_search_train, num_search_val=num_val,
                   num_test=counts["test"], batch_size=opts.batch_size,
                   eval_batch_size=opts.eval_batch_size, sources=sources, **pipelines)


def _too_small(name, num_train, per_class, num_classes):
    """The DataError of a train set that cannot hold search_val and leave some for search_train."""
    return DataError(f"{name}: {num_train} train images cannot hold search_val_per_class="
                     f"{per_class} x {num_classes} classes and leave some for search_train."
                     " Fix: lower search_val_per_class or raise train_limit.")
