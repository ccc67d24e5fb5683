"""A larq-zoo-style model registry: publish, list, show and load searched binary networks.

Layout of a registry root (a local directory, or an http(s) URL serving the same files):

    ROOT/index.json                 {"format", "models": {NAME: {VERSION: summary}}}
    ROOT/NAME/VERSION/card.json     the metadata card (its sha256 is in index.json)
    ROOT/NAME/VERSION/weights.h5    the weights (sha256 in the card)
    ROOT/NAME/VERSION/model.tflite  the LCE flatbuffer (sha256 in the card)
    ROOT/NAME/VERSION/README.md     a short model card for people

Publishing first checks everything it can without writing (`check_publish_target`:
the root, the index, the name and version), then builds the whole entry in
`ROOT/.staging/`, renames it into place and then rewrites `index.json`
atomically, under a lock. Published files are 0644 and folders 0755, so a web
server running as another user can serve the registry. A crash at any point leaves
`index.json` and every published version as they were; a published version is
never overwritten. A version folder missing from `index.json` is debris of a
crashed publish: it was never published, and the next publish of it replaces it.

Every file is fetched with `tf.keras.utils.get_file(file_hash=...)` into a cache
(`LQSEARCH_CACHE`, default `~/.lqsearch/cache`), from local registries too, so a
corrupted or tampered file is always refused.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from lqsearch import cost, io, quantizers, spaces
from lqsearch._version import __version__
from lqsearch.checks import check_int
from lqsearch.deploy import artifact, lce
from lqsearch.deploy.registry_files import (
    CARD_FILE,
    CARD_FORMAT,
    FILE_KINDS,
    INDEX_FILE,
    LOCK_FILE,
    README_FILE,
    STAGING_DIR,
    TFLITE_FILE,
    WEIGHTS_FILE,
    HashMismatchError,
    RegistryError,
    RegistryLocation,
    RegistryRoot,
    check_card,
    check_identifier,
    default_cache_dir,
    default_registry,
    fetch_verified,
    next_version,
    resolve,
    sha256_of,
    version_key,
)

__all__ = ["publish", "check_publish_target", "list_models", "get_card", "fetch", "load", "HashMismatchError",
           "RegistryError", "default_registry", "default_cache_dir"]


# -- publishing ---------------------------------------------------------------------------
def publish(model_dir_or_run_dir: Union[str, os.PathLike], *, name: str, version: Optional[Any] = None,
            registry: RegistryLocation = None, latency_runs: int = 20) -> Dict[str, Any]:
    """Publishes a saved model into a local registry, atomically.

    Arguments:
        model_dir_or_run_dir: an `lqsearch.deploy.artifact` directory (weights.h5 +
            model.json), or a search run directory whose `final/` is one (its
            `recipe.yaml` is then copied into the card).
        name: the model name, e.g. "vgg-small-auto".
        version: the version to publish; default: the next integer after the
            highest published one ("1" first).
        registry: the registry root folder; default `default_registry()`.
        latency_runs: timed LCE runs per latency figure (the median is kept).

    Returns:
        The entry: `name`, `version`, `registry`, `path`, the index summary, and
        the full metadata `card`.

    Raises:
        RegistryError: on an http(s) registry (read-only), a root that cannot be
            written, a malformed index, an invalid name or version, a source that is
            not a saved model, or a version already published; nothing is written then.
        ValueError: on a model LCE cannot convert. The registry is left unchanged.
    """
    check_int("latency_runs", latency_runs, minimum=1, error=RegistryError)
    root = check_publish_target(name, version=version, registry=registry)
    name = check_identifier("name", name)
    version = None if version is None else check_identifier("version", version)
    model_dir, recipe = _resolve_source(Path(model_dir_or_run_dir))
    source = _source_card(model_dir)
    base = io.make_dirs(root.path())
    with _publish_lock(base):
        index = root.read_index()  # again, under the lock: another publish may have finished meanwhile
        version = version or next_version(index, name)
        _refuse_published(index, root, name, version)
        _remove_debris(root, name, version)
        staging = _new_staging_dir(base, name, version)
        target = base / name / version
        try:
            card = _stage_entry(staging, model_dir, source, recipe, name=name, version=version,
                                latency_runs=latency_runs)
            io.make_dirs(target.parent)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            _remove_if_empty(target.parent)
            raise
        summary = _index_summary(card, name, version, sha256_of(target / CARD_FILE))
        index["models"].setdefault(name, {})[version] = summary
        try:
            io.write_json(base / INDEX_FILE, index)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            _remove_if_empty(target.parent)
            raise
    return {"name": name, "version": version, "registry": str(root), "path": str(target), **summary, "card": card}


def check_publish_target(name: str, *, version: Optional[Any] = None,
                         registry: RegistryLocation = None) -> RegistryRoot:
    """Checks, without writing anything, that `name` (and `version`) can be published into `registry`.

    Arguments:
        name: the model name.
        version: the version, or None for the next one.
        registry: the registry root; default `default_registry()`.

    Returns:
        The `RegistryRoot`.

    Raises:
        RegistryError: on an invalid name or version, an http(s) registry, a root that is a file, lies
            under a file or cannot be created or written, a malformed `index.json`, or a version already
            published.
    """
    root = RegistryRoot(registry)
    check_identifier("name", name)
    version = None if version is None else check_identifier("version", version)
    if root.remote:
        raise RegistryError(f"Cannot publish to {root}: http(s) registries are read-only. Fix: publish to a local "
                            "folder and serve that folder.")
    problem = io.folder_problem(root.path())
    if problem:
        raise RegistryError(f"The registry {root} {problem}. Fix: pass --registry (or publish.registry) a folder "
                            "you can write.")
    index = root.read_index()
    if version is not None:
        _refuse_published(index, root, name, version)
    return root


def _resolve_source(path: Path) -> Tuple[Path, Optional[str]]:
    """(artifact dir, recipe text or None) of a run dir or an artifact dir."""
    if (path / artifact.CARD_FILE).is_file():
        model_dir, recipe_file = path, None
    elif (path / "final" / artifact.CARD_FILE).is_file():
        model_dir, recipe_file = path / "final", path / "recipe.yaml"
    else:
        raise RegistryError(f"{path} is neither a saved model (weights.h5 + model.json) nor a run directory with "
                            "final/model.json. Fix: pass a run directory of `lqsearch recipe run`, or its final/ "
                            "folder.")
    if not (model_dir / artifact.WEIGHTS_FILE).is_file():
        raise RegistryError(f"{model_dir} has a model.json but no {artifact.WEIGHTS_FILE}. Fix: re-save the model.")
    try:
        recipe = recipe_file.read_text(encoding="utf-8") if recipe_file is not None and recipe_file.exists() else None
    except (OSError, UnicodeDecodeError) as error:
        raise RegistryError(f"{recipe_file} cannot be read as text ({error}). Fix: restore it, or publish the "
                            "final/ folder alone.") from None
    return model_dir, recipe


def _source_card(model_dir: Path) -> artifact.ModelCard:
    """The card of the model to publish; RegistryError naming the file when it is malformed."""
    try:
        source = artifact.load_card(model_dir)
        spaces.from_config(source.space).genome(source.genome)
        quantizers.get(source.quantizer)
    except (OSError, ValueError) as error:
        raise RegistryError(f"{model_dir / artifact.CARD_FILE} does not describe a model lqsearch can rebuild "
                            f"({error}). Fix: re-save the model with lqsearch.deploy.artifact.save.") from None
    return source


def _refuse_published(index: Dict[str, Any], root: RegistryRoot, name: str, version: str) -> None:
    if version in index["models"].get(name, {}):
        raise RegistryError(f"{name} version {version} is already published in {root} and is never overwritten; "
                            f"publish a new version, e.g. --version {next_version(index, name)} (in a recipe: "
                            f"publish.version={next_version(index, name)}).")


def _remove_debris(root: RegistryRoot, name: str, version: str) -> None:
    """Removes a version folder missing from the index: debris of a crashed publish, never published."""
    leftover = root.path(name, version)
    if leftover.exists():
        shutil.rmtree(leftover)


@contextlib.contextmanager
def _publish_lock(base: Path) -> Iterator[None]:
    """An exclusive lock on the registry for one publish (released by the OS if the process dies)."""
    descriptor = os.open(base / LOCK_FILE, os.O_RDWR | os.O_CREAT, io.FILE_MODE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _new_staging_dir(base: Path, name: str, version: str) -> Path:
    """A fresh staging folder (0755, as the version folder it becomes); staging left by killed publishes is
    removed (we hold the lock)."""
    staging_root = base / STAGING_DIR
    shutil.rmtree(staging_root, ignore_errors=True)
    io.make_dirs(staging_root)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-{version}-", dir=staging_root))
    os.chmod(staging, io.DIR_MODE)
    return staging


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _stage_entry(staging: Path, model_dir: Path, source: artifact.ModelCard, recipe: Optional[str], *,
                 name: str, version: str, latency_runs: int) -> Dict[str, Any]:
    """Writes weights, `.tflite`, README and card into `staging`; returns the card."""
    io.atomic_copy(model_dir / artifact.WEIGHTS_FILE, staging / WEIGHTS_FILE)
    model = source.build()
    model.load_weights(str(staging / WEIGHTS_FILE))
    flatbuffer = lce.convert(model)
    io.atomic_write_bytes(staging / TFLITE_FILE, flatbuffer)
    report = lce.conversion_report(model, flatbuffer)
    latency = lce.compare_latency(model, source.build(quantizer="float"),
                                  lce_binary=quantizers.get(source.quantizer).lce_binary,
                                  runs=latency_runs, binary_flatbuffer=flatbuffer)
    card = {
        "format": CARD_FORMAT, "name": name, "version": version,
        "published": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "lqsearch_version": __version__,
        "space": source.space, "genome": source.genome, "quantizer": source.quantizer,
        "input_shape": list(source.input_shape), "num_classes": source.num_classes, "dataset": source.dataset,
        "metrics": _card_metrics(source, model), "latency": latency, "lce": report.as_dict(),
        "recipe": recipe, "source": str(model_dir.resolve()), "extra": source.extra,
        "files": {"weights": _file_info(staging, WEIGHTS_FILE), "tflite": _file_info(staging, TFLITE_FILE)},
    }
    io.atomic_write_text(staging / README_FILE, _readme(card, report))
    card["files"]["readme"] = _file_info(staging, README_FILE)
    io.write_json(staging / CARD_FILE, card)
    return card


def _card_metrics(source: artifact.ModelCard, model: tf.keras.Model) -> Dict[str, Any]:
    metrics = source.metrics
    keys = ("flops", "binary_macs", "memory_bits")
    costs = metrics if all(metrics.get(k) is not None for k in keys) else cost.profile(model).as_dict()
    return {"top1": metrics.get("test_accuracy"), "top5": metrics.get("test_top5"),
            **{k: costs[k] for k in keys}}


def _file_info(folder: Path, filename: str) -> Dict[str, Any]:
    return {"path": filename, "sha256": sha256_of(folder / filename), "bytes": (folder / filename).stat().st_size}


def _index_summary(card: Dict[str, Any], name: str, version: str, card_sha256: str) -> Dict[str, Any]:
    return {
        "card_path": f"{name}/{version}/{CARD_FILE}", "card_sha256": card_sha256, "published": card["published"],
        "space": card["space"]["name"], "quantizer": card["quantizer"], "dataset": card["dataset"],
        "top1": card["metrics"]["top1"], "flops": card["metrics"]["flops"],
        "latency_s": card["latency"]["binary_s"], "speedup": card["latency"]["speedup"],
    }


def _readme(card: Dict[str, Any], report: lce.ConversionReport) -> str:
    metrics, latency = card["metrics"], card["latency"]
    speed = f"{latency['speedup']:.2f}x" if latency["speedup"] is not None else "not claimed"
    top1, top5 = ("-" if v is None else f"{v:.2f}" for v in (metrics["top1"], metrics["top5"]))
    lines = [
        f"# {card['name']} (version {card['version']})", "",
        f"A binary network from lqsearch {card['lqsearch_version']}: search space `{card['space']['name']}` "
        f"(options {card['space'].get('options', {})}), quantizer preset `{card['quantizer']}`, "
        f"input {tuple(card['input_shape'])}, {card['num_classes']} classes, "
        f"dataset {card['dataset'] or 'unknown'}.", "",
        "| Top-1 % | Top-5 % | FLOPs | Binary MACs | Memory (bits) | LCE binary | LCE float twin | Speed-up |",
        "|---|---|---|---|---|---|---|---|",
        f"| {top1} | {top5} | {metrics['flops']:.4g} | {metrics['binary_macs']:,} | "
        f"{metrics['memory_bits']:,} | {latency['binary_s'] * 1e3:.2f} ms | {latency['float_s'] * 1e3:.2f} ms "
        f"| {speed} |",
        "", f"Genome: `{json.dumps(card['genome'])}`", "",
        f"LCE conversion: {report.summary().replace(chr(10), '; ')}.",
        f"Latency: single image, median of {latency['settings']['runs']} runs, 1 thread, LCE interpreter "
        "with indirect BGEMM (x86).", "",
    ]
    lines += [f"Note: {latency['note']}.", ""] if latency["note"] else []
    return "\n".join(lines + ["```python", "import lqsearch.zoo", "", f"model = lqsearch.zoo.load("
                               f"{card['name']!r}, version={card['version']!r}, registry=REGISTRY)", "```", ""])

# -- reading ------------------------------------------------------------------------------
def list_models(*, registry: RegistryLocation = None) -> List[Dict[str, Any]]:
    """Every published (name, version) of a registry, sorted, each with its index summary.

    Arguments:
        registry: a local folder or an http(s) URL; default `default_registry()`.

    Returns:
        A list of dicts with `name`, `version` and the summary (space, quantizer,
        dataset, top1, flops, latency_s, speedup, published).
    """
    index = RegistryRoot(registry).read_index()
    return [{"name": name, "version": version, **index["models"][name][version]}
            for name in sorted(index["models"]) for version in sorted(index["models"][name], key=version_key)]


def get_card(name: str, *, version: Optional[Any] = None, registry: RegistryLocation = None,
             cache_dir=None) -> Dict[str, Any]:
    """The metadata card of a published model (latest version by default), hash-verified.

    Raises:
        RegistryError: on an unknown name or version (listing the published ones), or a malformed card.
        HashMismatchError: if the card differs from the sha256 in `index.json`.
    """
    root = RegistryRoot(registry)
    version, summary = resolve(root.read_index(), root, name, version)
    path = fetch_verified(root, name, version, CARD_FILE, summary["card_sha256"], cache_dir)
    where = root.url(name, version, CARD_FILE) if root.remote else str(root.path(name, version, CARD_FILE))
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RegistryError(f"{where} is not a readable JSON card ({error}). Fix: restore it from a backup, or "
                            "publish the model again.") from None
    return check_card(card, where)


def fetch(name: str, *, file: str = "weights", version: Optional[Any] = None, registry: RegistryLocation = None,
          cache_dir=None) -> Path:
    """Downloads one file of a published model into the cache, verifying its sha256.

    Arguments:
        name: the published model name.
        file: one of "weights", "tflite", "readme".
        version: default the latest.
        registry: a local folder or an http(s) URL; default `default_registry()`.
        cache_dir: default `default_cache_dir()`.

    Returns:
        The path of the verified file in the cache.

    Raises:
        ValueError: on an unknown name, version or file kind.
        HashMismatchError: if the file's sha256 differs from its card's; nothing is kept in the cache.
    """
    if file not in FILE_KINDS:
        raise ValueError(f"Unknown registry file {file!r}; valid files are {', '.join(FILE_KINDS)}.")
    card = get_card(name, version=version, registry=registry, cache_dir=cache_dir)
    info = card["files"][file]
    return fetch_verified(RegistryRoot(registry), name, card["version"], info["path"], info["sha256"], cache_dir)


# -- loading ------------------------------------------------------------------------------
def load(
    name: str,
    *,  # Keyword arguments only
    version: Optional[Any] = None,
    registry: RegistryLocation = None,
    weights: Union[bool, None, str, os.PathLike] = True,
    input_shape: Optional[Sequence[int]] = None,
    include_top: bool = True,
    num_classes: Optional[int] = None,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
) -> tf.keras.Model:
    """Instantiates a published lqsearch model, optionally with its published weights.

    The architecture is rebuilt from the card (search space, genome, quantizer
    preset); the weights are downloaded into the cache and verified by sha256.

    Arguments:
        name: the published model name, see `list_models()`.
        version: the version to load; default the latest.
        registry: a local folder or an http(s) URL; default `$LQSEARCH_REGISTRY`
            or `~/.lqsearch/registry`.
        weights: `True` (the published weights), `False` or `None` (random
            initialization), or the path to a weights `.h5` file.
        input_shape: optional HxWxC; default the card's. With the published
            weights it must keep the card's channels, and with `include_top=True`
            it must equal the card's input shape.
        include_top: whether to include the classifier. `False` returns the model
            up to the layer before it (the global pooling or flatten output).
        num_classes: classifier outputs; default the card's. Another value needs
            `include_top=False` or `weights=False`.
        cache_dir: download cache; default `$LQSEARCH_CACHE` or `~/.lqsearch/cache`.

    Returns:
        A `tf.keras.Model` returning logits (or features when `include_top=False`).

    Raises:
        ValueError: on an unknown name or version (listing the published ones), an
            invalid `weights`, or `input_shape`/`num_classes` incompatible with
            the published weights.
        HashMismatchError: if a downloaded file does not match its recorded sha256.

    References:
        - [Larq Zoo](https://docs.larq.dev/zoo/): the model-function conventions
          (`weights`, `include_top`, `num_classes`, `input_shape`).
        - Shen et al., Searching for Accurate Binary Neural Architectures.
        - Phan et al., Binarizing MobileNet via Evolution-based Searching.
    """
    _check_weights_argument(weights)
    card = get_card(name, version=version, registry=registry, cache_dir=cache_dir)
    input_shape, num_classes = _check_build_arguments(card, weights is True, input_shape, include_top, num_classes)
    space = spaces.from_config(card["space"])
    model = space.build(card["genome"], input_shape=input_shape, num_classes=num_classes, quantizer=card["quantizer"])
    if not include_top:
        model = _without_classifier(model)
    if weights is True:
        info = card["files"]["weights"]
        weights = fetch_verified(RegistryRoot(registry), name, card["version"], info["path"], info["sha256"], cache_dir)
    if weights:
        model.load_weights(str(weights), by_name=not include_top)
    return model


def _check_weights_argument(weights: Any) -> None:
    if weights in (True, False, None) or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights)):
        return
    raise ValueError(f"weights must be True (the published weights), False or None (random initialization), or "
                     f"the path to an existing weights .h5 file; got {weights!r}.")


def _check_build_arguments(card: Dict[str, Any], published_weights: bool, input_shape: Optional[Sequence[int]],
                           include_top: bool, num_classes: Optional[int]) -> Tuple[Tuple[int, ...], int]:
    """larq-zoo's rules for `input_shape` and `num_classes` against the published weights."""
    card_shape, card_classes = tuple(card["input_shape"]), card["num_classes"]
    shape = card_shape if input_shape is None else tuple(input_shape)
    classes = card_classes if num_classes is None else num_classes
    if published_weights and include_top and classes != card_classes:
        raise ValueError(f"With the published weights and include_top=True, num_classes must be {card_classes} "
                         f"(the published classifier), got {classes}; pass include_top=False to drop the "
                         "classifier, or weights=False for a random initialization.")
    if published_weights and include_top and shape != card_shape:
        raise ValueError(f"With the published weights and include_top=True, input_shape must be {card_shape}, got "
                         f"{shape}; pass include_top=False for another input size, or weights=False.")
    if published_weights and len(shape) == 3 and shape[-1] != card_shape[-1]:
        raise ValueError(f"The published weights expect {card_shape[-1]} input channels, but input_shape {shape} has "
                         f"{shape[-1]}; keep {card_shape[-1]} channels, or pass weights=False.")
    return shape, classes


def _without_classifier(model: tf.keras.Model) -> tf.keras.Model:
    """The model up to the input of its final Dense classifier."""
    head = model.layers[-1]
    if not isinstance(head, tf.keras.layers.Dense):
        raise ValueError(f"Cannot drop the classifier of {model.name!r}: its last layer {head.name!r} is a "
                         f"{type(head).__name__}, not a Dense classifier.")
    return tf.keras.Model(model.inputs, head.input, name=f"{model.name}_notop")
