"""Dataset source names: tfds names, local sources and `npz:PATH`; checked without loading anything."""
import dataclasses
from pathlib import Path

from lqsearch.checks import did_you_mean
from lqsearch.data.errors import DataError

__all__ = ["SourceSpec", "list_sources", "parse_source", "TFDS_SOURCES", "DOWNLOADABLE", "LOCAL_SOURCES", "NPZ_PREFIX",
           "DEFAULT_FASHION_MNIST_DIR"]

TFDS_SOURCES = {"cifar10": "cifar", "cifar100": "cifar", "mnist": "mnist",
                "fashion_mnist": "mnist", "imagenet2012": "imagenet"}
#: tfds sources tfds can download by itself (`DataConfig.download` defaults to on for them); imagenet2012 needs
#: the manual tar files.
DOWNLOADABLE = ("cifar10", "cifar100", "mnist", "fashion_mnist")
LOCAL_SOURCES = {"fashion_mnist_local": "mnist", "embedded": "mnist"}
NPZ_PREFIX = "npz:"
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """A parsed dataset source string.

    Attributes:
        kind: "tfds", "local" or "npz".
        name: the source name ("cifar10", "embedded", "npz", ...).
        family: default augmentation family, or None to infer from the images.
        path: the file of an `npz:PATH` source, else None.
    """

    kind: str
    name: str
    family: str | None
    path: Path | None = None


def list_sources():
    """Return the valid source names (a list of str); `npz:PATH` stands for any `.npz` path."""
    return sorted(TFDS_SOURCES) + sorted(LOCAL_SOURCES) + [NPZ_PREFIX + "PATH"]


def parse_source(source):
    """Check a source string without loading anything.

    Arguments:
        source: a name from `list_sources()` or `npz:PATH`.

    Returns:
        A `SourceSpec`.

    Raises:
        DataError: unknown name (with the valid ones and the closest match), or
            an `npz:` prefix without a path.
    """
    if not isinstance(source, str):
        raise DataError(f"dataset source must be a string, got {type(source).__name__}.")
    if source.startswith(NPZ_PREFIX):
        path = source[len(NPZ_PREFIX):].strip()
        if not path:
            raise DataError(f"dataset source {source!r} has no path. "
                            "Fix: 'npz:/path/to/data.npz'.")
        return SourceSpec("npz", "npz", None, Path(path).expanduser())
    if source in TFDS_SOURCES:
        return SourceSpec("tfds", source, TFDS_SOURCES[source])
    if source in LOCAL_SOURCES:
        return SourceSpec("local", source, LOCAL_SOURCES[source])
    hint = did_you_mean(source.lower(), sorted(TFDS_SOURCES) + sorted(LOCAL_SOURCES))
    raise DataError(f"unknown dataset source {source!r}.{hint} Valid sources: "
                    f"{', '.join(list_sources())}.")


