"""A saved candidate: weights `.h5` plus a JSON card with everything needed to rebuild it.

Layout of an artifact directory:

    DIR/weights.h5   the model's weights (`model.save_weights`, HDF5)
    DIR/model.json   {"space": {"name", "options"}, "genome", "quantizer",
                      "input_shape", "num_classes", "metrics", "dataset", "extra"}

Both files are written to temporary names and renamed, so a killed process
leaves either the old artifact or the new one, never a mix.
"""
from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from lqsearch import io, spaces

__all__ = ["ModelCard", "save", "load", "load_card", "WEIGHTS_FILE", "CARD_FILE"]

WEIGHTS_FILE = "weights.h5"
CARD_FILE = "model.json"


@dataclass
class ModelCard:
    """What a saved candidate is: its space, genome and build arguments, and how it scored."""

    space: Dict[str, Any]
    genome: Dict[str, Any]
    quantizer: str
    input_shape: Tuple[int, ...]
    num_classes: int
    metrics: Dict[str, Any] = field(default_factory=dict)
    dataset: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def build(self, *, quantizer: Optional[str] = None, input_shape=None, num_classes=None) -> tf.keras.Model:
        """Rebuilds the (untrained) model; arguments override the card's build arguments."""
        space = spaces.from_config(self.space)
        return space.build(
            self.genome,
            input_shape=tuple(input_shape or self.input_shape),
            num_classes=num_classes or self.num_classes,
            quantizer=quantizer or self.quantizer,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parses a card written by `to_json`.

        Raises:
            ValueError: on text that is not a JSON object, or unknown, missing or malformed keys.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"A model card is a JSON object, got {type(data).__name__}.")
        fields = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"Model card has unknown keys {unknown}; valid keys are {sorted(fields)}.")
        required = [name for name, f in fields.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"Model card has no {', '.join(missing)}; a card needs {', '.join(required)}.")
        if not isinstance(data["space"], dict) or not isinstance(data["space"].get("name"), str):
            raise ValueError(f"Model card key 'space' must be {{'name': ..., 'options': ...}}, got {data['space']!r}.")
        if not isinstance(data["input_shape"], list) or not isinstance(data["genome"], dict):
            raise ValueError("Model card keys 'input_shape' and 'genome' must be a list and an object.")
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**data)


def save(directory: os.PathLike, model: tf.keras.Model, card: ModelCard) -> Path:
    """Saves `model`'s weights and `card` into `directory` (created if needed), atomically per file.

    Returns:
        The directory path.
    """
    directory = io.make_dirs(directory)
    tmp_weights = directory / f".{WEIGHTS_FILE}.tmp.h5"
    try:
        model.save_weights(str(tmp_weights))
        os.chmod(tmp_weights, io.FILE_MODE)
        os.replace(tmp_weights, directory / WEIGHTS_FILE)
    finally:
        if tmp_weights.exists():
            tmp_weights.unlink()
    io.atomic_write_text(directory / CARD_FILE, card.to_json())
    return directory


def load_card(directory: os.PathLike) -> ModelCard:
    """Reads the card of the artifact in `directory`.

    Raises:
        FileNotFoundError: if `directory` holds no `model.json`.
    """
    path = Path(directory) / CARD_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; is {directory} a saved lqsearch model "
                                "(weights.h5 + model.json)?")
    return ModelCard.from_json(path.read_text())


def load(directory: os.PathLike) -> Tuple[tf.keras.Model, ModelCard]:
    """Rebuilds and returns the model saved in `directory`, with its weights, and its card."""
    card = load_card(directory)
    model = card.build()
    model.load_weights(str(Path(directory) / WEIGHTS_FILE))
    return model, card
