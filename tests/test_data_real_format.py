"""The data path on data in the real on-disk format: ImageNet tar files and the CIFAR-10 archive, via tfds' builders.

The session fixtures `synthetic_imagenet` and `synthetic_cifar10` (tests/conftest.py)
prepare them once with tfds' own builders; nothing is mocked and nothing is downloaded.
"""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from data_helpers import collect

from lqsearch import data, training
from lqsearch.run import recipes, runner
from lqsearch.testing.imagenet_files import imagenet_synsets, imagenet_validation_synsets


def test_synthetic_imagenet_is_prepared_by_the_tfds_builder(synthetic_imagenet):
    builder = tfds.builder("imagenet2012", data_dir=str(synthetic_imagenet.data_dir))
    assert builder.info.splits["train"].num_examples == 1000 * synthetic_imagenet.per_class
    assert builder.info.splits["validation"].num_examples == synthetic_imagenet.val_images
    assert builder.info.features["label"].names == imagenet_synsets()
    train = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    labels = np.array([example["label"] for example in train.as_numpy_iterator()])
    assert np.bincount(labels, minlength=1000).tolist() == [synthetic_imagenet.per_class] * 1000
    val = sorted((example["file_name"].decode(), int(example["label"]))
                 for example in builder.as_dataset(split="validation").as_numpy_iterator())
    names = builder.info.features["label"].names
    assert [names[label] for _, label in val] == imagenet_validation_synsets(synthetic_imagenet.val_images)
    assert val[0][0] == "ILSVRC2012_val_00000001.JPEG"
    print(f"synthetic ImageNet written and prepared in {synthetic_imagenet.prepare_seconds:.1f} s")


def test_synthetic_cifar10_loads_offline_through_load_dataset(synthetic_cifar10):
    dataset = data.load_dataset("cifar10", data_dir=synthetic_cifar10.data_dir, batch_size=16, augment=False)
    assert (dataset.num_train, dataset.num_test, dataset.num_classes) == (100, 40, 10)
    images, labels = dataset.arrays["train"]
    np.testing.assert_array_equal(images[:, 0, 0, 0] // 25, labels)  # the writer's class marker
    assert collect(dataset.test)[0].shape == (40, 32, 32, 3)


@pytest.mark.parametrize("split", ["search_train", "search_val", "train", "test"])
def test_imagenet_splits_yield_their_stated_counts(synthetic_imagenet, split):
    dataset = data.load_dataset("imagenet2012", data_dir=synthetic_imagenet.data_dir, batch_size=64,
                                image_size=16, search_train_per_class=2, search_val_per_class=1)
    images, labels = collect(dataset.pipeline(split))
    assert len(labels) == dataset.num_examples(split) and images.shape[1:] == (16, 16, 3)
    if split.startswith("search"):
        per_class = 2 if split == "search_train" else 1
        assert np.bincount(labels, minlength=1000).tolist() == [per_class] * 1000


def test_resnet18_imagenet_width_data_has_known_lengths_at_the_presets_batch(synthetic_imagenet):
    """Issue 20: the recipe's data with only sizes overridden; the preset's batch equals the data batch (256)."""
    recipe = recipes.load_recipe("resnet18_imagenet_width", [
        f"data.data_dir={synthetic_imagenet.data_dir}", "data.image_size=16",
        "data.search_train_per_class=2", "data.search_val_per_class=1"])
    dataset = runner.load_data(recipe)
    config = recipe.evaluation.training.config()
    assert config.batch_size == dataset.batch_size == 256
    for split in data.SPLITS:
        batch = config.batch_size if split in ("train", "search_train") else dataset.eval_batch_size
        assert training.steps_in(dataset.batched(split, batch), config) == dataset.num_batches(split), split
    assert sum(1 for _ in dataset.batched("search_train", config.batch_size)) == dataset.num_batches("search_train")
