"""Where a registry is and how its files are read: the root, identifiers, versions, verified downloads.

Every file is fetched with `tf.keras.utils.get_file(file_hash=...)` into a cache
(`LQSEARCH_CACHE`, default `~/.lqsearch/cache`), from local registries too, so a
corrupted or tampered file is always refused.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import tensorflow as tf

from lqsearch.checks import did_you_mean

__all__ = ["RegistryRoot", "HashMismatchError", "default_registry", "default_cache_dir", "check_identifier",
           "version_key", "next_version", "resolve", "sha256_of", "fetch_verified"]

INDEX_FILE, CARD_FILE, WEIGHTS_FILE, TFLITE_FILE, README_FILE = (
    "index.json", "card.json", "weights.h5", "model.tflite", "README.md")
INDEX_FORMAT = "lqsearch-registry/1"
CARD_FORMAT = "lqsearch-zoo-card/1"
STAGING_DIR = ".staging"
LOCK_FILE = ".lock"
FILE_KINDS = ("weights", "tflite", "readme")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: A registry root argument: a local folder, an http(s) URL, or None for `default_registry()`.
Registry = Optional[Union[str, os.PathLike]]


class HashMismatchError(ValueError):
    """A registry file's sha256 differs from the one its card (or index) records."""


def default_registry() -> str:
    """`$LQSEARCH_REGISTRY`, else `~/.lqsearch/registry`."""
    return os.environ.get("LQSEARCH_REGISTRY") or str(Path("~/.lqsearch/registry").expanduser())


def default_cache_dir() -> str:
    """`$LQSEARCH_CACHE`, else `~/.lqsearch/cache`."""
    return os.environ.get("LQSEARCH_CACHE") or str(Path("~/.lqsearch/cache").expanduser())


# -- where the registry is --------------------------------------------------------------
class RegistryRoot:
    """A registry root: a local directory or an http(s) URL."""

    def __init__(self, registry: Registry):
        text = str(registry if registry is not None else default_registry())
        self.remote = text.startswith(("http://", "https://"))
        self.text = text.rstrip("/") if self.remote else str(Path(text).expanduser().resolve())

    def __str__(self) -> str:
        return self.text

    def path(self, *parts: str) -> Path:
        return Path(self.text, *parts)

    def url(self, *parts: str) -> str:
        return "/".join([self.text, *parts]) if self.remote else self.path(*parts).as_uri()

    def read_index(self) -> Dict[str, Any]:
        """The parsed `index.json`; an empty index for a local root where nothing was published."""
        if not self.remote and not self.path(INDEX_FILE).exists():
            return {"format": INDEX_FORMAT, "models": {}}
        try:
            if self.remote:
                with urllib.request.urlopen(self.url(INDEX_FILE), timeout=30) as response:
                    text = response.read().decode("utf-8")
            else:
                text = self.path(INDEX_FILE).read_text()
            index = json.loads(text)
        except (OSError, ValueError, urllib.error.URLError) as error:
            raise ValueError(f"Cannot read the registry index {self.url(INDEX_FILE)} ({error}); check that "
                             f"{self} is an lqsearch registry (a folder or URL holding {INDEX_FILE}).") from error
        if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
            raise ValueError(f"{self.url(INDEX_FILE)} is not an lqsearch registry index "
                             f"(expected format {INDEX_FORMAT!r}).")
        return index


def check_identifier(kind: str, value: Any) -> str:
    value = str(value)
    if not _IDENTIFIER.fullmatch(value) or value == INDEX_FILE:
        raise ValueError(f"Invalid model {kind} {value!r}: use letters, digits, '.', '_' or '-' "
                         f"(starting with a letter or digit), e.g. vgg-small-auto or 2.")
    return value


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
        raise ValueError(f"No model {name!r} in registry {root}; published models: {published}.{hint} "
                         f"See `lqsearch zoo list --registry {root}`.")
    versions = models[name]
    version = max(versions, key=version_key) if version is None else str(version)
    if version not in versions:
        raise ValueError(f"Model {name!r} has no version {version!r} in registry {root}; published versions: "
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
    cache.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp for a missing cache_dir
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
        raise ValueError(f"Cannot download {url}: {error}; check that the registry {root} is reachable.") from error


def _discard(path: Path, cache: Path) -> None:
    """Deletes a refused download and the cache folders it leaves empty."""
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != cache and cache in folder.parents:
        with contextlib.suppress(OSError):
            folder.rmdir()
        folder = folder.parent
