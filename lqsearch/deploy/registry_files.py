"""Where a registry is and how its files are read: the root, identifiers, versions, verified downloads.

Every file is fetched with `tf.keras.utils.get_file(file_hash=...)` into a cache
(`LQSEARCH_CACHE`, default `~/.lqsearch/cache`), from local registries too, so a
corrupted or tampered file is always refused. `index.json` and every card are
checked field by field when read (`check_index`, `check_card`): a malformed
entry is a `RegistryError` naming the file and the entry, never a KeyError.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import numbers
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import tensorflow as tf

from lqsearch.checks import did_you_mean
from lqsearch.errors import HashMismatchError, RegistryError
from lqsearch.io import folder_problem, make_dirs

__all__ = ["RegistryRoot", "RegistryError", "HashMismatchError", "default_registry", "default_cache_dir",
           "check_identifier", "check_index", "check_card", "version_key", "next_version", "resolve", "sha256_of",
           "fetch_verified"]

INDEX_FILE, CARD_FILE, WEIGHTS_FILE, TFLITE_FILE, README_FILE = (
    "index.json", "card.json", "weights.h5", "model.tflite", "README.md")
INDEX_FORMAT = "lqsearch-registry/1"
CARD_FORMAT = "lqsearch-zoo-card/1"
STAGING_DIR = ".staging"
LOCK_FILE = ".lock"
FILE_KINDS = ("weights", "tflite", "readme")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: A registry root argument: a local folder, an http(s) URL, or None for `default_registry()`.
RegistryLocation = Optional[Union[str, os.PathLike]]


def default_registry() -> str:
    """`$LQSEARCH_REGISTRY`, else `~/.lqsearch/registry`."""
    return os.environ.get("LQSEARCH_REGISTRY") or str(Path("~/.lqsearch/registry").expanduser())


def default_cache_dir() -> str:
    """`$LQSEARCH_CACHE`, else `~/.lqsearch/cache`."""
    return os.environ.get("LQSEARCH_CACHE") or str(Path("~/.lqsearch/cache").expanduser())


# -- where the registry is --------------------------------------------------------------
class RegistryRoot:
    """A registry root: a local directory or an http(s) URL.

    Raises:
        RegistryError: on an empty path.
    """

    def __init__(self, registry: RegistryLocation):
        text = str(registry if registry is not None else default_registry())
        if not text.strip():
            raise RegistryError("The registry path is empty. Fix: pass --registry (or publish.registry) a folder "
                                "or an http(s) URL, or leave it out for the default "
                                f"({default_registry()}).")
        self.remote = text.startswith(("http://", "https://"))
        self.text = text.rstrip("/") if self.remote else str(Path(text).expanduser().resolve())

    def __str__(self) -> str:
        return self.text

    def path(self, *parts: str) -> Path:
        return Path(self.text, *parts)

    def url(self, *parts: str) -> str:
        return "/".join([self.text, *parts]) if self.remote else self.path(*parts).as_uri()

    def read_index(self) -> Dict[str, Any]:
        """The parsed and checked `index.json`; an empty index for a local root where nothing was published.

        Raises:
            RegistryError: if the root is a file, or the index cannot be read or is malformed.
        """
        if not self.remote:
            if self.path().exists() and not self.path().is_dir():
                raise RegistryError(f"The registry {self} is a file, not a folder. Fix: pass --registry (or "
                                    "publish.registry) a registry folder, or a new folder to publish into.")
            if not self.path(INDEX_FILE).exists():
                return {"format": INDEX_FORMAT, "models": {}}
        where = self.url(INDEX_FILE) if self.remote else str(self.path(INDEX_FILE))
        try:
            if self.remote:
                with urllib.request.urlopen(self.url(INDEX_FILE), timeout=30) as response:
                    text = response.read().decode("utf-8")
            else:
                text = self.path(INDEX_FILE).read_text(encoding="utf-8")
            index = json.loads(text, parse_constant=_refuse_constant)
        except (OSError, ValueError, urllib.error.URLError) as error:
            raise RegistryError(f"Cannot read the registry index {where} ({error}). Fix: check that {self} is an "
                                f"lqsearch registry (a folder or URL holding {INDEX_FILE}).") from None
        return check_index(index, where)


def check_identifier(kind: str, value: Any) -> str:
    """Returns `value` as a string if it is a valid model name or version (matched whole: no path, no newline).

    Raises:
        RegistryError: naming the allowed characters and an example.
    """
    value = value if isinstance(value, str) else str(value)
    if isinstance(value, bool) or not _IDENTIFIER.fullmatch(value) or value == INDEX_FILE:
        raise RegistryError(f"Invalid model {kind} {value!r}: use 1 to 100 letters, digits, '.', '_' or '-' "
                            f"(starting with a letter or digit), e.g. vgg-small-auto or 2.")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


#: Field kinds of `check_index` and `check_card`.
_KINDS = {
    "str": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "sha256": lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) is not None,
    "file": lambda v: isinstance(v, str) and _IDENTIFIER.fullmatch(v) is not None,
}
_SUMMARY_FIELDS = {
    "card_path": "str", "card_sha256": "sha256", "published": "str", "space": "str", "quantizer": "str",
    "dataset": "str|null", "top1": "number|null", "flops": "number", "latency_s": "number", "speedup": "number|null",
}
_CARD_FIELDS = {
    "name": "str", "version": "str", "published": "str", "lqsearch_version": "str", "space": "dict",
    "genome": "dict", "quantizer": "str", "input_shape": "list", "num_classes": "int", "dataset": "str|null",
    "metrics": "dict", "latency": "dict", "lce": "dict", "files": "dict",
}
_CARD_PARTS = {
    "space": {"name": "str"},
    "metrics": {"top1": "number|null", "top5": "number|null", "flops": "number", "binary_macs": "number",
                "memory_bits": "number"},
    "latency": {"binary_s": "number", "float_s": "number", "speedup": "number|null", "note": "str|null"},
    "lce": {"bconv_ops": "int", "binary_layers": "list", "fallbacks": "dict"},
}
_FILE_FIELDS = {"path": "file", "sha256": "sha256"}


def _check_fields(mapping: Any, fields: Dict[str, str], where: str, entry: str) -> Dict[str, Any]:
    """Checks that `mapping` is a dict holding every field of `fields` with an allowed kind."""
    if not isinstance(mapping, dict):
        raise RegistryError(f"{where}: {entry} must be a JSON object, got {type(mapping).__name__}. {_FIX}")
    for key, kinds in fields.items():
        if key not in mapping:
            raise RegistryError(f"{where}: {entry} has no {key!r}. {_FIX}")
        if not any(_KINDS[kind](mapping[key]) for kind in kinds.split("|")):
            raise RegistryError(f"{where}: {entry}.{key} must be {kinds.replace('|', ' or ')}, got "
                                f"{mapping[key]!r}. {_FIX}")
    return mapping


_FIX = "Fix: restore the file from a backup, or publish the model again into a new registry."


def check_index(index: Any, where: str) -> Dict[str, Any]:
    """Returns `index` if it is a well-formed registry index.

    Arguments:
        index: the parsed `index.json`.
        where: its path or URL, for messages.

    Raises:
        RegistryError: naming the file and the first malformed entry.
    """
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise RegistryError(f"{where} is not an lqsearch registry index (expected format {INDEX_FORMAT!r}). {_FIX}")
    models = index.get("models")
    if not isinstance(models, dict):
        raise RegistryError(f"{where}: 'models' must be a JSON object of model names, got {models!r}. {_FIX}")
    for name, versions in models.items():
        if not isinstance(versions, dict) or not _IDENTIFIER.fullmatch(name):
            raise RegistryError(f"{where}: models.{name} must be a valid name holding an object of versions. {_FIX}")
        for version, summary in versions.items():
            if not _IDENTIFIER.fullmatch(version):
                raise RegistryError(f"{where}: models.{name} has the invalid version {version!r}. {_FIX}")
            _check_fields(summary, _SUMMARY_FIELDS, where, f"models.{name}.{version}")
    return index


def check_card(card: Any, where: str) -> Dict[str, Any]:
    """Returns `card` if it is a well-formed model card (every field `zoo show`, `export` and `load` read).

    Arguments:
        card: the parsed `card.json`.
        where: its path or URL, for messages.

    Raises:
        RegistryError: naming the file and the first missing or malformed field.
    """
    _check_fields(card, _CARD_FIELDS, where, "the card")
    for part, fields in _CARD_PARTS.items():
        _check_fields(card[part], fields, where, part)
    for kind in FILE_KINDS:
        if kind not in card["files"]:
            raise RegistryError(f"{where}: files has no {kind!r}. {_FIX}")
        _check_fields(card["files"][kind], _FILE_FIELDS, where, f"files.{kind}")
    if not all(_KINDS["int"](v) and v > 0 for v in card["input_shape"]):
        raise RegistryError(f"{where}: input_shape must be positive integers, got {card['input_shape']!r}. {_FIX}")
    return card


def version_key(version: str) -> Tuple[int, Any]:
    return (0, int(version)) if version.isdigit() else (1, version)


def next_version(index: Dict[str, Any], name: str) -> str:
    numbers = [int(v) for v in index["models"].get(name, {}) if v.isdigit()]
    return str(max(numbers) + 1) if numbers else "1"


def resolve(index: Dict[str, Any], root: RegistryRoot, name: str, version: Optional[Any]) -> Tuple[str, Dict[str, Any]]:
    """(version, index summary) of a published model; clear errors listing what exists."""
    models = index["models"]
    if name not in models:
        hint = did_you_mean(name, models)
        published = ", ".join(sorted(models)) or "none yet"
        raise RegistryError(f"No model {name!r} in registry {root}; published models: {published}.{hint} "
                         f"See `lqsearch zoo list --registry {root}`.")
    versions = models[name]
    version = max(versions, key=version_key) if version is None else str(version)
    if version not in versions:
        raise RegistryError(f"Model {name!r} has no version {version!r} in registry {root}; published versions: "
                         f"{', '.join(sorted(versions, key=version_key))}.")
    return version, versions[version]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_verified(root: RegistryRoot, name: str, version: str, filename: str, sha256: str, cache_dir) -> Path:
    """`get_file` with `file_hash`; a mismatching download is deleted and reported."""
    cache = Path(cache_dir or default_cache_dir()).expanduser()
    problem = folder_problem(cache)
    if problem:
        raise RegistryError(f"The download cache {cache} {problem}. Fix: set LQSEARCH_CACHE (or cache_dir=) to a "
                            "folder you can write.")
    make_dirs(cache)  # get_file falls back to /tmp for a missing cache_dir
    subdir = os.path.join("models", name, version)
    cached = cache / subdir / f"{sha256[:16]}-{filename}"
    url = root.url(name, version, filename)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # get_file's progress bar
            return Path(tf.keras.utils.get_file(fname=cached.name, origin=url, file_hash=sha256,
                                                hash_algorithm="sha256", cache_dir=str(cache), cache_subdir=subdir))
    except ValueError as error:
        if "hash" not in str(error):
            raise
        actual = sha256_of(cached) if cached.exists() else "unknown"
        _discard(cached, cache)
        raise HashMismatchError(
            f"Hash mismatch for {url}: sha256 is {actual}, but the registry records {sha256}; the file is "
            f"corrupted or was tampered with, so it was refused (nothing kept in the cache {cache}). "
            f"Re-publish {name} (as a new version) or fix the registry.") from None
    except Exception as error:  # get_file raises a bare Exception on URL errors
        _discard(cached, cache)
        raise RegistryError(f"Cannot download {url}: {error}. "
                            f"Fix: check that the registry {root} is reachable.") from None


def _discard(path: Path, cache: Path) -> None:
    """Deletes a refused download and the cache folders it leaves empty."""
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != cache and cache in folder.parents:
        with contextlib.suppress(OSError):
            folder.rmdir()
        folder = folder.parent
