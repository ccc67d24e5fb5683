"""Datasets for the search and for the final retraining.

One entry point, `load_dataset(source, ...)`, returns a `Dataset` with four
batched `tf.data` pipelines:

- `train`: the full train set, for the final retraining;
- `search_train` / `search_val`: a disjoint, stratified split of the TRAIN
  set, used by the search; the test set never enters the search;
- `test`: the test set, for the final evaluation only.

Every pipeline yields `(images, labels)`: images are float32 in [0, 1] with
shape (batch, H, W, C) (grayscale images get C = 1), labels are int32 class
indices. Nothing is mean/std-normalized; do that in the model if wanted.

Training pipelines (`train`, `search_train`) are shuffled and augmented per
family (`lqsearch.data.pipelines`), pass by pass: `dataset.pipeline(split, seed=s,
epoch=e)` is a function of (s, split, e) only, and `dataset.seeded(split, s)` is what
`lqsearch.training.fit` trains on (epoch e gets pass e, also after a resume). The
`train` / `search_train` attributes are pass 0 under the data seed. In-memory sources hold their uint8 images in
memory; when `image_size` resizes them, the resized uint8 images are cached
before augmentation. ImageNet streams encoded JPEGs from disk and decodes each
image in the pass that uses it; its search subsets are selected once and stored as
encoded shards (`lqsearch.data.subsets`). Every pipeline states its length.
Sources: see `list_sources()`.
"""
from lqsearch.data.config import DataConfig
from lqsearch.data.dataset import SPLITS, Dataset
from lqsearch.data.errors import DataError
from lqsearch.data.loading import from_arrays, load_dataset
from lqsearch.data.sources import list_sources, parse_source

__all__ = ["load_dataset", "from_arrays", "DataConfig", "Dataset", "DataError", "list_sources", "parse_source",
           "SPLITS"]
