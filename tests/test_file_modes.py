"""Files that matter are written 0644 and folders 0755 whatever the umask, so another user can serve them."""
import json
import os

import pytest
from bad_input_workspace import write_registry

from lqsearch import cli
from lqsearch import io as lqsearch_io
from lqsearch.run import recipes, runner


@pytest.fixture
def strict_umask():
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def mode(path):
    return path.stat().st_mode & 0o777


def test_the_atomic_writers_ignore_the_umask(tmp_path, strict_umask):
    lqsearch_io.atomic_write_text(tmp_path / "a" / "b" / "text.txt", "x")
    lqsearch_io.write_json(tmp_path / "a" / "data.json", {"x": 1})
    lqsearch_io.atomic_copy(tmp_path / "a" / "data.json", tmp_path / "c" / "copy.json")
    assert {mode(p) for p in tmp_path.rglob("*") if p.is_file()} == {0o644}
    assert {mode(p) for p in tmp_path.rglob("*") if p.is_dir()} == {0o755}
    assert json.loads((tmp_path / "c" / "copy.json").read_text()) == {"x": 1}


def test_a_failed_copy_leaves_neither_the_file_nor_a_temporary(tmp_path, monkeypatch):
    (tmp_path / "source").write_bytes(b"x" * 100)

    def disk_full(source, target):
        target.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lqsearch_io.shutil, "copyfileobj", disk_full)
    with pytest.raises(OSError):
        lqsearch_io.atomic_copy(tmp_path / "source", tmp_path / "out" / "target")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_the_run_directory_and_its_recipe(tmp_path, strict_umask):
    recipe = recipes.load_recipe("quickstart", smoke=True)
    assert runner.prepare_run_dir(recipe, tmp_path / "runs" / "q") is False
    assert mode(tmp_path / "runs") == mode(tmp_path / "runs" / "q") == 0o755
    assert mode(tmp_path / "runs" / "q" / "recipe.yaml") == 0o644
    assert runner.prepare_run_dir(recipe, tmp_path / "runs" / "q") is True  # the same recipe resumes


def test_zoo_export_writes_0644_and_nothing_when_the_copy_fails(tmp_path, strict_umask, monkeypatch, capsys):
    registry = write_registry(tmp_path / "registry")
    monkeypatch.setenv("LQSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exported" / "tiny.tflite"
    args = ["zoo", "export", "tiny", "--format", "tflite", "--registry", str(registry), "--out", str(out)]
    assert cli.main(args) == 0
    assert mode(out) == 0o644 and out.read_bytes() == b"TFL3 flatbuffer"
    capsys.readouterr()

    def disk_full(source, target):
        target.write(b"TFL")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lqsearch_io.shutil, "copyfileobj", disk_full)
    other = tmp_path / "exported" / "other.tflite"
    assert cli.main([*args[:-1], str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"Cannot write {other}: No space left on device" in err
    assert sorted(p.name for p in other.parent.iterdir()) == ["tiny.tflite"]  # no half file, no temporary
