"""`DataConfig`: how a dataset is loaded and split (a recipe's `data:` section), declared and checked once."""
from __future__ import annotations

import os
from typing import Literal, Optional, Tuple, Union

from pydantic import Field, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lqsearch.config import Config
from lqsearch.data.pipelines import FAMILIES

__all__ = ["DataConfig"]


class DataConfig(Config):
    """Options of `lqsearch.data.load_dataset` (every source), validated once.

    Attributes:
        data_dir: tfds data dir for tfds sources; the IDX folder for "fashion_mnist_local".
        manual_dir: imagenet2012 only: the folder with ILSVRC2012_img_train.tar and
            ILSVRC2012_img_val.tar (no network is needed).
        download: let tfds download a dataset that is not prepared in `data_dir` yet (network). None
            (default): on for the sources tfds can download (cifar10, cifar100, mnist, fashion_mnist), off
            for the others; imagenet2012 is never downloaded (its tar files are manual: `manual_dir`).
        batch_size: batch size of the training pipelines (train, search_train).
        eval_batch_size: batch size of the evaluation pipelines (default: batch_size).
        image_size: int or (H, W) to resize to (ImageNet: the crop, 224).
        seed: seed of the search split, the shuffling and the augmentation.
        search_fraction: share of each train class held out as search_val (default 0.1);
            or `search_val_per_class`, images per class held out (ImageNet: only this one, default 50).
        search_train_per_class: images per class in search_train, drawn from the rest of the train set.
        train_limit, test_limit: keep a stratified subset of this size (ImageNet: the first in file order).
        augment: augment the training pipelines.
        family: "cifar", "imagenet" or "mnist" to override the augmentation family.
        subset_dir: imagenet2012 only: the folder where the search subsets are stored once as
            encoded shards and reused (default `<data_dir>/lqsearch_subsets`; set it when data_dir
            is read-only).
        deterministic: `tf.data.Options.deterministic` of the pipelines: True keeps the element
            order of parallel maps, False trades it for throughput; None: False for ImageNet, True
            for in-memory sources. It orders elements only; a recipe's top-level `deterministic` (op
            determinism, `training.seed_everything`) makes every pipeline deterministic anyway.

    Raises:
        ConfigError: on an unknown option or a value out of range.
    """

    data_dir: Optional[str] = None
    manual_dir: Optional[str] = None
    download: Optional[bool] = None
    batch_size: int = Field(128, ge=1)
    eval_batch_size: Optional[int] = Field(None, ge=1)
    image_size: Optional[Union[StrictInt, Tuple[StrictInt, StrictInt]]] = None
    seed: int = Field(0, ge=0)
    search_fraction: Optional[float] = Field(None, gt=0, lt=1)
    search_val_per_class: Optional[int] = Field(None, ge=1)
    search_train_per_class: Optional[int] = Field(None, ge=1)
    train_limit: Optional[int] = Field(None, ge=1)
    test_limit: Optional[int] = Field(None, ge=1)
    augment: bool = True
    family: Optional[Literal[FAMILIES]] = None
    subset_dir: Optional[str] = None
    deterministic: Optional[bool] = None

    @field_validator("data_dir", "manual_dir", "subset_dir", mode="before")
    @classmethod
    def _path_as_text(cls, value):
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("image_size", mode="before")
    @classmethod
    def _image_size(cls, value):
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            sizes = () if value is None else (value,)
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            sizes = tuple(value)
        else:
            raise ValueError(f"image_size must be an int or (height, width), got {value!r}. Fix: e.g. image_size=32.")
        if any(isinstance(size, bool) or not isinstance(size, int) for size in sizes):
            raise ValueError(f"image_size must be integers, got {value!r}. Fix: e.g. image_size=32.")
        if any(size < 1 for size in sizes):
            raise PydanticCustomError("greater_than_equal", "Input should be >= 1", {"ge": 1})
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _one_search_val_size(self):
        if self.search_fraction is not None and self.search_val_per_class is not None:
            raise ValueError("give search_fraction or search_val_per_class, not both: each sizes search_val.")
        return self

    @property
    def image_hw(self) -> Optional[Tuple[int, int]]:
        """`image_size` as (H, W), or None."""
        if self.image_size is None:
            return None
        return (self.image_size, self.image_size) if isinstance(self.image_size, int) else tuple(self.image_size)
