"""Faults: `kill -9` during supernet training, during a final training and during publishing, then resume.

Each test runs `python -m lqsearch.cli recipe run quickstart --smoke ...` as a
subprocess, polls the run directory for a marker of the stage it wants to
interrupt (a supernet checkpoint, the final training's epoch backup, a staged
registry entry), sends SIGKILL, checks what the kill left (valid JSON, an
intact registry), then runs the same command again and checks that nothing
finished was done again and that the run completes.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

POLL_SECONDS = 0.05
KILL_DEADLINE_SECONDS = 400


def start(args, cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-u", "-m", "lqsearch.cli", *args], cwd=cwd, stdout=handle,
                                stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def kill_when(process: subprocess.Popen, reached) -> float:
    """SIGKILLs `process` as soon as `reached()` is true; returns when it happened (seconds since the call)."""
    began = time.monotonic()
    try:
        while not reached():  # bounded by the deadline
            assert process.poll() is None, "the run ended before reaching the marker"
            assert time.monotonic() - began < KILL_DEADLINE_SECONDS, "the marker never appeared"
            time.sleep(POLL_SECONDS)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return time.monotonic() - began


def run_to_end(args, cwd: Path, log: Path) -> str:
    result = subprocess.run([sys.executable, "-u", "-m", "lqsearch.cli", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def trial_ids(text: str) -> set:
    """Ids of the evolution's trials in a log (the random search's lines say "gen -")."""
    return {line.split(" trial ")[1].split()[0] for line in text.splitlines()
            if " trial " in line and "gen " in line and "gen -" not in line}


def random_search_lines(text: str) -> list:
    return [line for line in text.splitlines() if line.startswith("gen -")]


def valid_json_or_absent(path: Path) -> None:
    if path.exists():
        json.loads(path.read_text())  # never half-written


def completed_results(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    assert results["final"]["test_accuracy"] >= 0
    return results


@pytest.mark.heavy
def test_kill_during_supernet_training_resumes_from_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = ["recipe", "run", "quickstart", "--smoke", "--verbose", "--out", str(run), "publish.name=null",
            "evaluation.mode=oneshot", "evaluation.supernet_steps=400", "search.max_trials=2"]
    process = start(args, tmp_path, tmp_path / "first.log")
    kill_when(process, lambda: (run / "tuner" / "supernet" / "checkpoint").exists())
    first = (tmp_path / "first.log").read_text()
    assert "supernet step 200/400" in first and "supernet step 400/400" not in first
    valid_json_or_absent(run / "results.json")

    second = run_to_end(args, tmp_path, tmp_path / "second.log")
    # Ten progress lines, every 40 steps; the checkpoint is written every 200 steps.
    assert "supernet step 40/400" not in second and "supernet step 200/400" not in second  # not trained again
    assert "supernet step 240/400" in second and "supernet step 400/400" in second
    assert len([t for t in completed_results(run)["trials"] if t["status"] == "COMPLETED"]) == 2


@pytest.mark.heavy
def test_kill_during_final_training_keeps_the_search_and_the_finished_epochs(tmp_path):
    run = tmp_path / "run"
    args = ["recipe", "run", "quickstart", "--smoke", "--verbose", "--out", str(run), "publish.name=null",
            "final.epochs=6"]
    process = start(args, tmp_path, tmp_path / "first.log")
    # The study's first training (row 1, seed 7) backs up to study/.<row>-seed7.backup: BackupAndRestore
    # creates the folder when training begins and a checkpoint at the end of each epoch.
    kill_when(process, lambda: any((run / "study").glob(".*.backup/**/checkpoint")))
    first = (tmp_path / "first.log").read_text()
    searched = trial_ids(first)
    assert len(searched) == 3 and "Study: " in first and len(random_search_lines(first)) == 3
    results = json.loads((run / "results.json").read_text())  # written after the search, valid after the kill
    assert results["final"] is None and len(results["trials"]) == 3

    second = run_to_end(args, tmp_path, tmp_path / "second.log")
    assert trial_ids(second) == set() and random_search_lines(second) == []  # no search trial ran again
    first_row = [line for line in second.splitlines() if line.startswith("study 1/")]
    assert first_row and not any(": epoch 1/6 " in line for line in first_row)  # resumed after the backed-up epoch
    assert any(": epoch 6/6 " in line for line in first_row)
    assert any(": epoch 1/6 " in line for line in second.splitlines() if line.startswith("study 2/"))  # not backed up
    assert {t["trial_id"] for t in completed_results(run)["trials"]} == searched
    assert not list((run / "study").glob(".*.backup"))


@pytest.mark.heavy
def test_kill_during_publish_leaves_the_registry_intact_and_the_resume_publishes_once(tmp_path):
    run, registry = tmp_path / "run", tmp_path / "registry"
    args = ["recipe", "run", "quickstart", "--smoke", "--out", str(run), f"publish.registry={registry}"]
    process = start(args, tmp_path, tmp_path / "first.log")
    staging = registry / ".staging"
    kill_when(process, lambda: staging.is_dir() and any(p.is_file() for p in staging.glob("*/*")))
    first = (tmp_path / "first.log").read_text()
    searched = trial_ids(first)
    assert len(searched) == 3 and "Verdict: " in first  # the study ended before publishing began
    assert not (registry / "index.json").exists()  # nothing published: no index, no version folder
    assert [p.name for p in registry.iterdir() if not p.name.startswith(".")] == []
    assert not (run / "published.json").exists()
    final_weights = (run / "final" / "weights.h5").stat().st_mtime_ns
    valid_json_or_absent(run / "results.json")

    second = run_to_end(args, tmp_path, tmp_path / "second.log")
    assert trial_ids(second) == set() and "Published quickstart-vgg-small version 1" in second
    assert (run / "final" / "weights.h5").stat().st_mtime_ns == final_weights  # not retrained
    index = json.loads((registry / "index.json").read_text())
    assert list(index["models"]["quickstart-vgg-small"]) == ["1"]
    folder = registry / "quickstart-vgg-small" / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "card.json", "model.tflite", "weights.h5"]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in folder.iterdir())
    assert folder.stat().st_mode & 0o777 == 0o755 and (registry / "index.json").stat().st_mode & 0o777 == 0o644
    assert not any(staging.iterdir())
    third = run_to_end(args, tmp_path, tmp_path / "third.log")  # a finished run resumes to "already published"
    assert "Already published" in third and json.loads((registry / "index.json").read_text()) == index


def _deterministic(results: dict) -> dict:
    """What a resumed run must reproduce to the last digit: trials, random search, study table, verdict."""
    keys = ("trial_id", "genome", "accuracy", "fitness", "flops", "generation", "origin", "parents", "status")
    random_best = results["random_search"]
    return {"trials": [{k: t.get(k) for k in keys} for t in results["trials"]],
            "random_search": random_best and {k: random_best.get(k) for k in ("genome", "accuracy", "fitness")},
            "study": [{k: v for k, v in row.items() if k != "latency_s"} for row in results["study"]],  # latency: timed
            "study_verdict": results["study_verdict"], "study_comparisons": results["study_comparisons"],
            "final": {k: results["final"][k] for k in ("genome", "test_accuracy", "test_accuracy_mean", "seeds")}}


@pytest.mark.heavy
def test_a_run_killed_in_the_search_and_in_the_study_resumes_to_the_uninterrupted_results(tmp_path):
    """kill -9 in generation 1 of the search (a trial in flight), resume, kill -9 in the study's first training
    (after its first epoch's backup), resume: results.json equals an uninterrupted run's, digit for digit."""
    def args(run):
        return ["recipe", "run", "quickstart", "--smoke", "--out", str(run), "publish.name=null",
                "search.max_trials=4", "evaluation.epochs=2", "final.epochs=3", "final.seeds=2"]

    straight = tmp_path / "straight"
    run_to_end(args(straight), tmp_path, tmp_path / "straight.log")
    run = tmp_path / "killed"

    def completed_trials() -> int:
        try:
            results = json.loads((run / "results.json").read_text())
        except (OSError, ValueError):
            return 0
        return sum(t["status"] == "COMPLETED" for t in results["trials"])

    kill_when(start(args(run), tmp_path, tmp_path / "first.log"), lambda: completed_trials() >= 3)
    assert completed_trials() == 3  # generation 1's second trial was in flight
    kill_when(start(args(run), tmp_path, tmp_path / "second.log"),
              lambda: any((run / "study").glob(".*.backup/**/checkpoint")))
    second = (tmp_path / "second.log").read_text()
    assert "Study: " in second and not any(line.startswith("study 1/") and "test top-1" in line
                                           for line in second.splitlines())  # killed inside the first training
    third = run_to_end(args(run), tmp_path, tmp_path / "third.log")
    assert not any(": epoch 1/3 " in line for line in third.splitlines() if line.startswith("study 1/"))  # resumed
    assert _deterministic(completed_results(run)) == _deterministic(completed_results(straight))
