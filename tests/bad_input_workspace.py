"""A workspace full of broken things, for the bad-input and fuzz tests.

`make_workspace(root)` writes, under `root`: a plain file, a read-only folder,
broken recipes, `.npz` datasets broken in every way a user manages, broken
Fashion-MNIST folders, registries with malformed `index.json` or `card.json`
(hand-written: no model is built, so this takes milliseconds), a saved model
to publish, and run directories of other recipes.
"""
import contextlib
import gzip
import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np

from lqsearch.data import readers

VGG_GENOME = {f"conv{i}": 1.0 for i in range(1, 7)}
SPACE = {"name": "vgg_small", "options": {"width_multiplier": 0.125}}
UNPRIVILEGED_UID = 65534  # `nobody`: root ignores permission bits, so read-only cases run as this user


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def unprivileged():
    """Runs the block as a user who cannot write a 0555 folder nor read a 0000 file.

    As root (containers, CI), the effective user becomes `nobody` for the block; as anyone else the
    permission bits already do.
    """
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(UNPRIVILEGED_UID)
    try:
        yield
    finally:
        os.seteuid(0)


# -- data ------------------------------------------------------------------------------------------------------
def arrays(num_train=40, num_test=12, shape=(28, 28), num_classes=4):
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, size=(num_train, *shape), dtype=np.uint8),
            "y_train": np.arange(num_train) % num_classes,
            "x_test": rng.integers(0, 256, size=(num_test, *shape), dtype=np.uint8),
            "y_test": np.arange(num_test) % num_classes}


def _with(**changes):
    data = arrays()
    data.update(changes)
    return data


def _set(key, index, value):
    data = arrays()
    data[key] = data[key].copy()
    data[key][index] = value
    return data


NPZ_CASES = {
    "missing_key": {k: v for k, v in arrays().items() if k != "y_test"},
    "float_images": _with(x_train=arrays()["x_train"] / 255.0),
    "float_labels": _with(y_train=arrays()["y_train"] + 0.5),
    "negative_label": _set("y_train", 3, -1),
    "test_label_out_of_range": _set("y_test", 0, 9),
    "stray_label": _set("y_train", 5, 10**6),
    "class_gap": _with(y_train=np.array([0, 1, 3] * 14)[:40]),
    "count_mismatch": _with(y_train=arrays()["y_train"][:-1]),
    "two_channels": _with(x_train=np.zeros((40, 28, 28, 2), np.uint8)),
    "shape_mismatch": _with(x_test=np.zeros((12, 32, 32), np.uint8)),
    "tiny_images": arrays(shape=(4, 4)),
    "one_class": arrays(num_classes=1),
    "bad_num_classes": dict(arrays(), num_classes=np.array(1)),
    "too_few": arrays(num_train=2, num_test=2, num_classes=2),
    "pickled": _with(y_train=np.array([str(i) for i in range(40)], dtype=object)),
}


def _write_idx(path, array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def _write_data(data_dir: Path) -> None:
    data_dir.mkdir()
    for name, content in NPZ_CASES.items():
        np.savez(data_dir / f"{name}.npz", **content)
    good = data_dir / "good.npz"
    np.savez(good, **arrays())
    (data_dir / "truncated.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (data_dir / "garbage.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    fashion = data_dir / "fashion"
    fashion.mkdir()
    for key, file_name in readers.FASHION_MNIST_FILES.items():
        count = 20 if key.endswith("train") else 10
        _write_idx(fashion / file_name, np.zeros((count, 28, 28)) if key.startswith("x") else np.arange(count) % 10)
    images = fashion / readers.FASHION_MNIST_FILES["x_train"]
    images.write_bytes(images.read_bytes()[:40])  # a truncated download
    (data_dir / "tfds_empty").mkdir()


# -- registries --------------------------------------------------------------------------------------------------
def card(name="tiny", version="1", files=None):
    return {
        "format": "lqsearch-zoo-card/1", "name": name, "version": version, "published": "2026-01-01T00:00:00+00:00",
        "lqsearch_version": "0.0", "space": SPACE, "genome": VGG_GENOME, "quantizer": "bireal",
        "input_shape": [28, 28, 1], "num_classes": 10, "dataset": "embedded",
        "metrics": {"top1": 50.0, "top5": 90.0, "flops": 1.0e5, "binary_macs": 1000, "memory_bits": 2000},
        "latency": {"binary_s": 0.001, "float_s": 0.002, "speedup": 2.0, "note": None},
        "lce": {"bconv_ops": 5, "binary_layers": ["conv2"], "fallbacks": {}},
        "recipe": None, "source": "/nowhere", "extra": {}, "files": files or {},
    }


def summary(card_sha):
    return {"card_path": "tiny/1/card.json", "card_sha256": card_sha, "published": "2026-01-01T00:00:00+00:00",
            "space": "vgg_small", "quantizer": "bireal", "dataset": "embedded", "top1": 50.0, "flops": 1.0e5,
            "latency_s": 0.001, "speedup": 2.0}


def write_registry(root: Path, *, edit_card=None, edit_index=None, after=None) -> Path:
    """A registry holding tiny/1 with hand-made files; the edits break it on purpose."""
    folder = root / "tiny" / "1"
    folder.mkdir(parents=True)
    contents = {"weights": b"weights", "tflite": b"TFL3 flatbuffer", "readme": b"# tiny\n"}
    files = {}
    for kind, filename in (("weights", "weights.h5"), ("tflite", "model.tflite"), ("readme", "README.md")):
        (folder / filename).write_bytes(contents[kind])
        files[kind] = {"path": filename, "sha256": sha256(contents[kind]), "bytes": len(contents[kind])}
    entry = card(files=files)
    if edit_card:
        edit_card(entry)
    card_bytes = json.dumps(entry).encode()
    (folder / "card.json").write_bytes(card_bytes)
    index = {"format": "lqsearch-registry/1", "models": {"tiny": {"1": summary(sha256(card_bytes))}}}
    if edit_index:
        edit_index(index)
    (root / "index.json").write_text(index if isinstance(index, str) else json.dumps(index))
    if after:
        after(folder)
    return root


REGISTRY_CASES = {
    "good": {},
    "nomodels": {"edit_index": lambda index: index.pop("models")},
    "nospace": {"edit_index": lambda index: index["models"]["tiny"]["1"].pop("space")},
    "nosha": {"edit_index": lambda index: index["models"]["tiny"]["1"].pop("card_sha256")},
    "wrongformat": {"edit_index": lambda index: index.update(format="something-else/9")},
    "stringflops": {"edit_index": lambda index: index["models"]["tiny"]["1"].update(flops="many")},
    "nometrics": {"edit_card": lambda entry: entry.pop("metrics")},
    "nofiles": {"edit_card": lambda entry: entry["files"].pop("tflite")},
    "badfilepath": {"edit_card": lambda entry: entry["files"]["tflite"].update(path="../../etc/passwd")},
    "tampered": {"after": lambda folder: (folder / "card.json").write_text("{}")},
    "tamperedtflite": {"after": lambda folder: (folder / "model.tflite").write_bytes(b"evil")},
}


def _write_registries(root: Path) -> None:
    for name, edits in REGISTRY_CASES.items():
        write_registry(root / name, **edits)
    (root / "notjson").mkdir()
    (root / "notjson" / "index.json").write_text("{not json")
    (root / "nanflops").mkdir()
    (root / "nanflops" / "index.json").write_text(
        json.dumps({"format": "lqsearch-registry/1", "models": {"tiny": {"1": dict(summary("0" * 64))}}})
        .replace('"flops": 100000.0', '"flops": NaN'))


# -- runs, models and recipes --------------------------------------------------------------------------------------
def _write_model(folder: Path, **changes) -> None:
    folder.mkdir(parents=True)
    model = {"space": SPACE, "genome": VGG_GENOME, "quantizer": "bireal", "input_shape": [28, 28, 1],
             "num_classes": 10, "metrics": {"test_accuracy": 50.0}, "dataset": "embedded", "extra": {}}
    model.update(changes)
    (folder / "model.json").write_text(json.dumps(model))
    (folder / "weights.h5").write_bytes(b"not read before every check has passed")


def _write_recipes(folder: Path) -> None:
    folder.mkdir()
    (folder / "syntax.yaml").write_text("space: vgg_small\nsearch:\n  population_size: 4\n   seed: 2\n")
    (folder / "duplicate.yaml").write_text("space: vgg_small\nsearch:\n  seed: 1\n  seed: 2\n")
    (folder / "latin1.yaml").write_bytes("description: caf\xe9\nspace: vgg_small\n".encode("latin-1"))
    (folder / "list.yaml").write_text("- space: vgg_small\n")
    (folder / "empty.yaml").write_text("")
    (folder / "unknown.yaml").write_text("space: vgg_small\nsearch_space: vgg_small\n")
    (folder / "tab.yaml").write_text("space: vgg_small\nsearch:\n\tseed: 1\n")
    (folder / "two_docs.yaml").write_text("space: vgg_small\n---\nspace: resnet18\n")
    (folder / "folder.yaml").mkdir()
    secret = folder / "unreadable.yaml"
    secret.write_text("space: vgg_small\n")
    secret.chmod(0)


def make_workspace(root: Path) -> Path:
    """Writes every broken thing under `root` (which must be world-traversable for the unprivileged cases)."""
    root.mkdir(exist_ok=True)
    (root / "afile").write_text("a plain file\n")
    (root / "adir").mkdir()
    (root / "empty").mkdir()
    (root / "notempty").mkdir()
    (root / "notempty" / "notes.txt").write_text("mine\n")
    (root / "otherrun").mkdir()
    (root / "otherrun" / "recipe.yaml").write_text("name: another\nspace: vgg_small\n")
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)
    (root / "open").mkdir()
    (root / "open").chmod(0o777)  # writable by the unprivileged user too
    _write_data(root / "data")
    _write_registries(root / "reg")
    _write_model(root / "run" / "final")
    (root / "run" / "recipe.yaml").write_text("name: tiny\nspace: vgg_small\n")
    _write_model(root / "badmodel" / "final", space="vgg_small")
    _write_recipes(root / "recipes")
    return root
