"""The one atomic writer of lqsearch: a temporary file in the same folder, then a rename.

A process killed at any moment leaves either the old file or the new one, never
half a file. Written files are readable by others (mode 0644) and new folders
are 0755, so a registry or a run directory can be served by a web server
running as another user.

Remote paths (`scheme://...`, e.g. a Keras Tuner project on GCS) cannot be
renamed atomically; `write_json` writes them with `tf.io.gfile`.

`folder_problem` and `file_problem` tell, without creating anything, why a
path given by a user could not be written, so a command can refuse it before
it starts.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional, Union

import tensorflow as tf

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_copy", "write_json", "jsonable", "exclusive_lock",
           "FILE_MODE", "DIR_MODE", "make_dirs", "folder_problem", "file_problem"]

#: Longest pause between two attempts to take a busy lock.
MAX_LOCK_BACKOFF_S = 2.0

FILE_MODE = 0o644
DIR_MODE = 0o755

PathLike = Union[str, os.PathLike]
#: Permission checks use the effective user (the one that will write), where the OS supports it.
_EFFECTIVE_IDS = os.access in os.supports_effective_ids


def folder_problem(path: PathLike) -> Optional[str]:
    """Why `path` cannot be used as a folder to write into, or None if it can; nothing is created.

    Arguments:
        path: a folder that may not exist yet.

    Returns:
        None, or the end of a sentence about the path, e.g. "is a file, not a folder",
        "lies under /a/b, which is a file, not a folder", or "cannot be created: /a is
        read-only for this user (permission denied)".
    """
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    for folder in (absolute, *absolute.parents):  # bounded by the depth of the path
        try:
            mode = os.stat(folder).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there yet, or under a file: the first existing ancestor tells
        except PermissionError:
            return f"cannot be reached: {folder} is not accessible for this user (permission denied)"
        if not stat.S_ISDIR(mode):
            if folder == absolute:
                return "is a file, not a folder"
            return f"lies under {folder}, which is a file, not a folder"
        if not os.access(folder, os.W_OK | os.X_OK, effective_ids=_EFFECTIVE_IDS):
            if folder == absolute:
                return "is read-only for this user (permission denied)"
            return f"cannot be created: {folder} is read-only for this user (permission denied)"
        return None
    return None


def file_problem(path: PathLike) -> Optional[str]:
    """Why a file cannot be written (atomically, by rename) at `path`, or None if it can; nothing is created.

    Arguments:
        path: the file to write; it may exist (it is then replaced).

    Returns:
        None, or the end of a sentence about the path (see `folder_problem`).
    """
    path = Path(path).expanduser()
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            return "is a folder, not a file"
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        pass  # the folder check below tells
    problem = folder_problem(path.parent)
    return None if problem is None else f"cannot be written: its folder {path.parent} {problem}"


def make_dirs(path: PathLike) -> Path:
    """Creates `path` and its missing parents with mode 0755 (whatever the umask); returns it."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, DIR_MODE)
    return path


def _atomic_write(path: PathLike, fill: Callable[[BinaryIO], None]) -> Path:
    """Creates `path` (mode 0644) from what `fill` writes to a temporary file, fsynced, then renamed."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Writes `data` to `path` (mode 0644) through a temporary file and a rename; returns the path."""
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_copy(source: PathLike, path: PathLike) -> Path:
    """Copies the file `source` to `path` (mode 0644) through a temporary file and a rename; returns the path."""
    def fill(handle: BinaryIO) -> None:
        with open(source, "rb") as original:
            shutil.copyfileobj(original, handle)
    return _atomic_write(path, fill)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` atomically, mode 0644; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(obj: Any) -> Any:
    """A copy of `obj` made of plain JSON types: numpy scalars become Python ones, tuples and sets lists."""
    if isinstance(obj, dict):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(value) for value in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        obj = obj.item()  # numpy scalar
    return obj


def write_json(path: PathLike, obj: Any, *, indent: Union[int, None] = 2, allow_nan: bool = False) -> None:
    """Writes `obj` as JSON: atomically for a local path, with `tf.io.gfile` for `scheme://` paths.

    Arguments:
        path: the file.
        obj: JSON-able data (numpy scalars are converted).
        indent: as for `json.dumps`.
        allow_nan: False (the default) refuses NaN and infinity, which strict JSON readers reject;
            Keras Tuner's own state files (failed trials score NaN) pass True.

    Raises:
        ValueError: on NaN or infinity when `allow_nan` is False.
    """
    text = json.dumps(jsonable(obj), indent=indent, sort_keys=True, allow_nan=allow_nan)
    if "://" in str(path):
        with tf.io.gfile.GFile(str(path), "w") as handle:
            handle.write(text)
        return
    atomic_write_text(path, text)


@contextlib.contextmanager
def exclusive_lock(path: PathLike, *, timeout: float, purpose: str) -> Iterator[None]:
    """Holds an exclusive lock on `path` for the duration of the block, across processes.

    The lock is `fcntl.flock` on a lock file, so the operating system releases it when
    its holder dies (kill -9 included). A process that finds the lock busy retries
    with an exponential back-off (at most `MAX_LOCK_BACKOFF_S` between attempts).

    Arguments:
        path: the lock file (created if needed).
        timeout: seconds to wait for a busy lock.
        purpose: what the holder does, for the timeout message (e.g. "trains the supernet").

    Raises:
        TimeoutError: naming the lock file, the purpose and the wait, when the lock stayed busy.
    """
    path = Path(path)
    make_dirs(path.parent)
    with open(path, "a") as handle:
        deadline, pause = time.monotonic() + timeout, 0.05
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"waited {timeout:g} s for {path}, held by another process that {purpose}; it is "
                        "still running (the lock is released when its holder exits): wait for it, or raise the timeout."
                    ) from None
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, MAX_LOCK_BACKOFF_S)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

