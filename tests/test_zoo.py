"""The model registry: publish, list, show, load (local and over HTTP), export, and its failure modes."""
import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_lce import INPUT_SHAPE, images, lce_predict, tiny_vgg

from lqsearch import cli, zoo
from lqsearch import io as lqsearch_io
from lqsearch.deploy import artifact, lce

RECIPE_TEXT = "name: tiny\nspace: vgg_small\n"


def make_run_dir(run_dir: Path, quantizer="bireal") -> Path:
    """A run directory as `lqsearch recipe run` leaves it: recipe.yaml, results.json, final/."""
    space, model = tiny_vgg(quantizer)
    card = artifact.ModelCard(space=space.get_config(), genome=space.uniform(1), quantizer=quantizer,
                              input_shape=INPUT_SHAPE, num_classes=10, dataset="cifar10",
                              metrics={"test_accuracy": 61.5, "test_top5": 95.0})
    artifact.save(run_dir / "final", model, card)
    (run_dir / "recipe.yaml").write_text(RECIPE_TEXT)
    (run_dir / "results.json").write_text(json.dumps({"trials": [], "final": {"test_accuracy": 61.5}}))
    return run_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(registry: Path) -> dict:
    """sha256 of every published file (dot-folders excluded), keyed by relative path."""
    return {str(p.relative_to(registry)): sha256(p) for p in sorted(registry.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(registry).parts)}


def cached_files(cache: Path) -> list:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


# Every test here publishes (LCE conversion, latency) or loads a published model: seconds each.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One bireal model published as tiny/1 into a module registry (read-only for tests), under a strict umask."""
    root = tmp_path_factory.mktemp("zoo")
    run_dir = make_run_dir(root / "run")
    previous = os.umask(0o077)  # the published files must still be 0644 and the folders 0755
    try:
        entry = zoo.publish(run_dir, name="tiny", registry=root / "registry", latency_runs=3)
    finally:
        os.umask(previous)
    return {"root": root, "run": run_dir, "registry": root / "registry", "entry": entry}


@pytest.fixture
def registry_copy(published, tmp_path):
    """A private copy of the published registry, for tests that change it."""
    return Path(shutil.copytree(published["registry"], tmp_path / "registry"))


@contextlib.contextmanager
def serve(directory: Path):
    """Serves `directory` over HTTP on 127.0.0.1 from a thread; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def original_logits(published):
    model, _ = artifact.load(published["run"] / "final")
    return model.predict(images(), verbose=0)


def test_publish_writes_card_weights_tflite_readme_and_index(published):
    entry, registry = published["entry"], published["registry"]
    assert entry["name"] == "tiny" and entry["version"] == "1"
    folder = registry / "tiny" / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "card.json", "model.tflite", "weights.h5"]
    card = json.loads((folder / "card.json").read_text())
    assert card == entry["card"]
    assert card["space"] == {"name": "vgg_small", "options": {"width_multiplier": 0.25}}
    assert card["quantizer"] == "bireal" and card["input_shape"] == [32, 32, 3] and card["num_classes"] == 10
    assert card["dataset"] == "cifar10" and card["recipe"] == RECIPE_TEXT
    from lqsearch._version import __version__

    assert card["lqsearch_version"] == __version__
    metrics = card["metrics"]
    assert metrics["top1"] == 61.5 and metrics["top5"] == 95.0
    assert metrics["flops"] > 0 and metrics["binary_macs"] > 0 and metrics["memory_bits"] > 0
    latency = card["latency"]
    assert latency["binary_s"] > 0 and latency["float_s"] > 0 and latency["speedup"] > 0
    assert latency["lce_binary_activations"] is True and latency["settings"]["use_indirect_bgemm"] is True
    assert card["lce"]["bconv_ops"] == 5 and card["lce"]["fallbacks"] == {}
    for info in card["files"].values():
        assert sha256(folder / info["path"]) == info["sha256"]
    index = json.loads((registry / "index.json").read_text())
    assert index["models"]["tiny"]["1"]["card_sha256"] == sha256(folder / "card.json")
    assert "lqsearch.zoo.load('tiny'" in (folder / "README.md").read_text()
    assert not any((registry / ".staging").iterdir())
    # Served by a web server running as another user: every file 0644, every folder 0755.
    assert {p.stat().st_mode & 0o777 for p in registry.rglob("*") if p.is_file() and p.name != ".lock"} == {0o644}
    assert {p.stat().st_mode & 0o777 for p in [registry, *registry.rglob("*")] if p.is_dir()} == {0o755}


def test_load_from_a_local_registry_predicts_like_the_original(published, tmp_path):
    model = zoo.load("tiny", registry=published["registry"], cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(model.predict(images(), verbose=0), original_logits(published))
    assert zoo.list_models(registry=published["registry"])[0]["name"] == "tiny"


def test_load_over_http_predicts_like_the_original_and_tampering_is_refused(published, registry_copy, tmp_path):
    cache = tmp_path / "cache"
    with serve(registry_copy) as url:
        assert [(m["name"], m["version"]) for m in zoo.list_models(registry=url)] == [("tiny", "1")]
        model = zoo.load("tiny", version="1", registry=url, cache_dir=cache)
        np.testing.assert_array_equal(model.predict(images(), verbose=0), original_logits(published))

        weights = registry_copy / "tiny" / "1" / "weights.h5"
        weights.write_bytes(weights.read_bytes() + b"tampered")
        fresh = tmp_path / "fresh-cache"
        with pytest.raises(zoo.HashMismatchError, match="sha256 .* tampered with"):
            zoo.load("tiny", registry=url, cache_dir=fresh)
    assert not [p for p in cached_files(fresh) if "weights" in p.name]


def test_tampered_local_weights_are_refused_and_nothing_is_cached(registry_copy, tmp_path):
    weights = registry_copy / "tiny" / "1" / "weights.h5"
    weights.write_bytes(weights.read_bytes()[:-1] + b"X")
    cache = tmp_path / "cache"
    with pytest.raises(zoo.HashMismatchError, match="Hash mismatch"):
        zoo.load("tiny", registry=registry_copy, cache_dir=cache)
    assert not [p for p in cached_files(cache) if "weights" in p.name]
    assert zoo.load("tiny", registry=registry_copy, cache_dir=cache, weights=False).output_shape == (None, 10)


def test_a_tampered_card_is_refused(registry_copy, tmp_path):
    card = registry_copy / "tiny" / "1" / "card.json"
    card.write_text(card.read_text().replace('"bireal"', '"ste"'))
    with pytest.raises(zoo.HashMismatchError):
        zoo.get_card("tiny", registry=registry_copy, cache_dir=tmp_path / "cache")
    assert cached_files(tmp_path / "cache") == []


def test_second_publish_of_a_version_is_refused_with_exit_2(published, registry_copy, capsys):
    before = snapshot(registry_copy)
    code = cli.main(["zoo", "publish", str(published["run"]), "--name", "tiny", "--version", "1",
                     "--registry", str(registry_copy)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lqsearch: error:")]
    assert code == 2 and len(errors) == 1
    assert "tiny version 1 is already published" in errors[0] and "--version 2" in errors[0]
    assert snapshot(registry_copy) == before


@pytest.mark.heavy
def test_a_publish_failing_midway_leaves_the_registry_as_it_was(published, registry_copy, monkeypatch):
    before = snapshot(registry_copy)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while measuring latency")

    monkeypatch.setattr(lce, "compare_latency", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        zoo.publish(published["run"], name="tiny", registry=registry_copy)
    monkeypatch.undo()

    write_json = lqsearch_io.write_json

    def fail_index(path, obj, **kwargs):  # the staged card.json is written too; only the index write fails
        if Path(path).name == "index.json":
            raise OSError("disk full while writing the index")
        write_json(path, obj, **kwargs)

    monkeypatch.setattr(lqsearch_io, "write_json", fail_index)
    with pytest.raises(OSError, match="disk full"):
        zoo.publish(published["run"], name="other", registry=registry_copy, latency_runs=1)
    assert snapshot(registry_copy) == before
    assert not (registry_copy / "tiny" / "2").exists() and not (registry_copy / "other").exists()


@pytest.mark.heavy
def test_a_publish_killed_midway_leaves_the_registry_intact_and_the_next_publish_works(
        published, registry_copy, tmp_path):
    before = snapshot(registry_copy)
    marker = tmp_path / "midway"
    script = textwrap.dedent(f"""
        import pathlib, time
        from lqsearch import zoo
        from lqsearch.deploy import lce

        def stall(*args, **kwargs):  # the .tflite is already staged when latency is measured
            pathlib.Path({str(marker)!r}).write_text("midway")
            time.sleep(120)

        lce.compare_latency = stall
        zoo.publish({str(published['run'])!r}, name="tiny", registry={str(registry_copy)!r})
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the publish subprocess never reached the midway point"
        assert list((registry_copy / ".staging").glob("tiny-2-*/model.tflite"))
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert snapshot(registry_copy) == before
    assert [m["version"] for m in zoo.list_models(registry=registry_copy)] == ["1"]

    (registry_copy / "tiny" / "2").mkdir()  # debris of a publish killed between rename and index write
    (registry_copy / "tiny" / "2" / "junk").write_text("never published")
    entry = zoo.publish(published["run"] / "final", name="tiny", registry=registry_copy, latency_runs=1)
    assert entry["version"] == "2" and entry["card"]["recipe"] is None
    assert not (registry_copy / "tiny" / "2" / "junk").exists()
    assert not any((registry_copy / ".staging").iterdir())
    assert {k: v for k, v in snapshot(registry_copy).items() if k.startswith("tiny/1/")} == \
        {k: v for k, v in before.items() if k.startswith("tiny/1/")}
    assert [m["version"] for m in zoo.list_models(registry=registry_copy)] == ["1", "2"]


def test_load_follows_larq_zoo_rules_for_top_classes_and_shape(published, tmp_path):
    registry, cache = published["registry"], tmp_path / "cache"
    with pytest.raises(ValueError, match="num_classes must be 10 .* include_top=False"):
        zoo.load("tiny", registry=registry, cache_dir=cache, num_classes=5)
    with pytest.raises(ValueError, match=r"input_shape must be \(32, 32, 3\)"):
        zoo.load("tiny", registry=registry, cache_dir=cache, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="expect 3 input channels"):
        zoo.load("tiny", registry=registry, cache_dir=cache, include_top=False, input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="weights must be True"):
        zoo.load("tiny", registry=registry, cache_dir=cache, weights="imagenet")
    assert zoo.load("tiny", registry=registry, cache_dir=cache, weights=False, num_classes=5).output_shape == (None, 5)

    features = zoo.load("tiny", registry=registry, cache_dir=cache, include_top=False, num_classes=5)
    original, _ = artifact.load(published["run"] / "final")
    expected = tf.keras.Model(original.input, original.get_layer("fc").input).predict(images(), verbose=0)
    np.testing.assert_array_equal(features.predict(images(), verbose=0), expected)
    assert features.layers[-1].name == "flatten"
    larger = zoo.load("tiny", registry=registry, cache_dir=cache, include_top=False, input_shape=(64, 64, 3))
    assert larger.output_shape[-1] == 4 * features.output_shape[-1]


def test_unknown_names_and_versions_list_what_exists(published, tmp_path):
    registry = published["registry"]
    with pytest.raises(ValueError, match="No model 'tiyn' .* published models: tiny. Did you mean 'tiny'"):
        zoo.load("tiyn", registry=registry, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no version '7' .* published versions: 1"):
        zoo.get_card("tiny", version=7, registry=registry, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="published models: none yet"):
        zoo.get_card("tiny", registry=tmp_path / "empty", cache_dir=tmp_path)


def test_publish_refuses_bad_input(published, tmp_path):
    with pytest.raises(ValueError, match="neither a saved model"):
        zoo.publish(tmp_path, name="x", registry=tmp_path / "registry")
    with pytest.raises(ValueError, match="read-only"):
        zoo.publish(published["run"], name="x", registry="http://127.0.0.1:9/registry")
    with pytest.raises(ValueError, match="Invalid model name"):
        zoo.publish(published["run"], name="../escape", registry=tmp_path / "registry")


def test_default_registry_and_cache_come_from_the_environment(published, tmp_path, monkeypatch):
    monkeypatch.setenv("LQSEARCH_REGISTRY", str(published["registry"]))
    monkeypatch.setenv("LQSEARCH_CACHE", str(tmp_path / "env-cache"))
    assert zoo.get_card("tiny")["name"] == "tiny"
    assert cached_files(tmp_path / "env-cache")


def test_cli_list_show_and_export(published, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LQSEARCH_CACHE", str(tmp_path / "cache"))
    registry = str(published["registry"])
    assert cli.main(["zoo", "list", "--registry", registry]) == 0
    assert "tiny" in capsys.readouterr().out
    assert cli.main(["zoo", "show", "tiny", "--registry", registry]) == 0
    shown = capsys.readouterr().out
    assert "5 LceBconv2d ops for 5 binary conv layers" in shown and "speed-up" in shown
    assert cli.main(["zoo", "show", "tiny", "--registry", registry, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"] == RECIPE_TEXT

    out = tmp_path / "exported" / "tiny.tflite"
    assert cli.main(["zoo", "export", "tiny", "--format", "tflite", "--out", str(out), "--registry", registry]) == 0
    flatbuffer = out.read_bytes()
    assert flatbuffer == (published["registry"] / "tiny" / "1" / "model.tflite").read_bytes()
    assert lce.count_ops(flatbuffer)[lce.BCONV_OP] == 5
    assert np.max(np.abs(lce_predict(flatbuffer, images()) - original_logits(published))) < 1e-3

    capsys.readouterr()
    assert cli.main(["zoo", "export", "tiny", "--format", "onnx", "--registry", registry]) == 2
    assert "valid formats are tflite" in capsys.readouterr().err
