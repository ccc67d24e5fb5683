"""`load_dataset` and `from_arrays`: the entry points of `lqsearch.data`."""
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from lqsearch.data import readers, tfds_source
from lqsearch.data.dataset import Dataset, data_config, make_options
from lqsearch.data.errors import DataError
from lqsearch.data.imagenet import load_imagenet
from lqsearch.data.pipelines import IMAGENET_CROP, build_pipeline
from lqsearch.data.sources import DEFAULT_FASHION_MNIST_DIR, DOWNLOADABLE, parse_source
from lqsearch.data.splits import limit, search_split

__all__ = ["load_dataset", "from_arrays"]


def load_dataset(source, config=None, **options):
    """Load a dataset and build its train / search / test pipelines.

    Arguments:
        source: a name from `list_sources()` ("cifar10", "cifar100", "mnist",
            "fashion_mnist", "imagenet2012", "fashion_mnist_local", "embedded")
            or "npz:PATH" (keys x_train, y_train, x_test, y_test; uint8 images
            (N, H, W) or (N, H, W, C); integer labels).
        config: a `DataConfig` (data dir, batch sizes, image size, seed, search
            splits, limits, augmentation: see `lqsearch.data.DataConfig`).
        **options: the same settings as keyword arguments, instead of `config`
            (e.g. `load_dataset("cifar10", batch_size=64, search_fraction=0.2)`).

    Returns:
        A `Dataset`.

    Raises:
        DataError: unknown source, bad option, missing or malformed data, or a
            tfds dataset that is not prepared and may not be downloaded (`download`: by
            default on for cifar10, cifar100, mnist, fashion_mnist), or a download that fails, or an
            ImageNet subset folder that cannot be written (set `subset_dir`).
    """
    spec = parse_source(source)
    config = data_config(config, options)
    opts = make_options(config)
    data_dir, manual_dir = config.data_dir, config.manual_dir
    download = spec.name in DOWNLOADABLE if config.download is None else config.download
    subset_dir = config.subset_dir
    if download and spec.kind == "tfds" and spec.name not in DOWNLOADABLE:
        raise DataError(f"tfds dataset {spec.name!r} cannot be downloaded: its tar files come from image-net.org "
                        "by hand. Fix: set data.download=false (or leave it out) and data.manual_dir=DIR, the folder "
                        "holding ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar.")
    if spec.family == "imagenet":
        return load_imagenet(spec.name, opts, data_dir=data_dir, manual_dir=manual_dir, subset_dir=subset_dir)
    if spec.kind == "tfds":
        arrays = _read_tfds(spec.name, data_dir=data_dir, download=download)
    elif spec.kind == "npz":
        arrays = readers.read_npz(spec.path)
    elif spec.name == "fashion_mnist_local":
        arrays = readers.read_fashion_mnist_dir(data_dir or DEFAULT_FASHION_MNIST_DIR)
    else:
        arrays = readers.read_embedded()
    return _dataset_from_checked(spec.name, arrays, spec.family, opts)


def _read_tfds(name, *, data_dir, download):
    """`tfds_source.read_tfds_arrays`, with a not-prepared dataset reported with the fixes a recipe can use."""
    try:
        return tfds_source.read_tfds_arrays(name, data_dir=data_dir, download=download)
    except DataError:
        builder = tfds.builder(name, data_dir=data_dir)
        if download or (builder.data_path / "dataset_info.json").exists():
            raise
    raise DataError(
        f"tfds dataset {name!r} is not prepared in {builder.data_dir}. Fix: let tfds download it (needs the network: "
        f"data.download=true, the default for {name!r}), or prepare it once with `tfds build {name} "
        f"--data_dir DIR` (needs the network) and set the recipe key data.data_dir=DIR (in Python: "
        f"load_dataset({name!r}, data_dir=DIR), or download=True), or use an offline dataset: "
        "dataset=fashion_mnist_local or dataset=embedded.")


def from_arrays(x_train, y_train, x_test, y_test, *, name="arrays", num_classes=None,
                **options):
    """Build a `Dataset` from numpy arrays held by the caller.

    Arguments:
        x_train, x_test: uint8 images, (N, H, W) or (N, H, W, C) with C in {1, 3}.
        y_train, y_test: integer labels 0..num_classes-1, shape (N,) or (N, 1).
        name: the `Dataset.name`.
        num_classes: number of classes (default: max(y_train) + 1).
        **options: as for `load_dataset` (`DataConfig` fields; the data source's own are not used).

    Returns:
        A `Dataset`; the family is inferred from the images unless given.

    Raises:
        DataError: bad arrays or options.
    """
    opts = make_options(data_config(None, options))
    arrays = readers.check_arrays({"x_train": x_train, "y_train": y_train, "x_test": x_test,
                                "y_test": y_test}, where=name, num_classes=num_classes)
    return _dataset_from_checked(name, arrays, None, opts)


def _infer_family(input_shape):
    """Guess the family of (H, W, C) images: "mnist" if C == 1, else "cifar" up to 64x64."""
    if input_shape[-1] == 1:
        return "mnist"
    return "cifar" if max(input_shape[:2]) <= 64 else "imagenet"


def _dataset_from_checked(name, arrays, family, opts):
    """Build a `Dataset` from checked in-memory arrays (see `readers.check_arrays`)."""
    rng = np.random.default_rng(opts.seed)
    x_train, y_train = limit(arrays["x_train"], arrays["y_train"], opts.train_limit, rng)
    x_test, y_test = limit(arrays["x_test"], arrays["y_test"], opts.test_limit, rng)
    search_train, search_val = search_split(y_train, opts, rng)
    raw = {"train": (x_train, y_train),
           "search_train": (x_train[search_train], y_train[search_train]),
           "search_val": (x_train[search_val], y_train[search_val]),
           "test": (x_test, y_test)}
    family = opts.family or family or _infer_family(x_train.shape[1:])
    size = opts.image_size or (
        (IMAGENET_CROP, IMAGENET_CROP) if family == "imagenet" else x_train.shape[1:3])
    sources = {}
    for split, (images, labels) in raw.items():
        stream = tf.data.Dataset.from_tensor_slices((images, labels))
        sources[split] = build_pipeline(
            stream, split=split, family=family, size=size, opts=opts,
            native_size=images.shape[1:3], num_examples=len(labels))
    pipelines = {split: source.passes(opts.seed) for split, source in sources.items()}
    return Dataset(
        name=name, family=family, input_shape=(*size, x_train.shape[-1]),
        num_classes=arrays["num_classes"], num_train=len(y_train),
        num_search_train=len(search_train), num_search_val=len(search_val),
        num_test=len(y_test), batch_size=opts.batch_size,
        eval_batch_size=opts.eval_batch_size, arrays=raw, sources=sources, **pipelines)
