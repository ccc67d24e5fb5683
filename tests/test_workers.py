"""One recipe across processes: `lqsearch recipe run NAME --workers N` (Keras Tuner's chief and local workers)."""
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from lqsearch.run import workers

ONESHOT = ["evaluation.mode=oneshot", "search.max_trials=8", "search.population_size=4", "search.num_parents=2",
           "search.num_crossovers=2", "search.num_mutations=2", "publish.name=null"]


def test_roles_follow_keras_tuners_variables():
    with workers.chief_environment(1234):
        assert workers.is_chief() and not workers.is_worker()
        with workers.single_process():
            assert not workers.is_chief() and not workers.is_worker()
        assert workers.is_chief()
    saved = {name: os.environ.get(name) for name in workers.ROLE_VARIABLES}
    try:
        os.environ.update(KERASTUNER_TUNER_ID="worker3", KERASTUNER_ORACLE_IP="127.0.0.1",
                          KERASTUNER_ORACLE_PORT="1")
        assert workers.is_worker() and not workers.is_chief()
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.mark.slow
@pytest.mark.heavy
def test_two_workers_with_one_killed_lose_no_trial_and_prepare_once(tmp_path):
    out = tmp_path / "run"
    log = open(tmp_path / "log.txt", "w")
    chief = subprocess.Popen([sys.executable, "-m", "lqsearch.cli", "recipe", "run", "quickstart", "--smoke", *ONESHOT,
                              "--workers", "2", "--out", str(out)], stdout=log, stderr=subprocess.STDOUT,
                             cwd=tmp_path)
    try:
        deadline, killed = time.monotonic() + 600, None
        while killed is None and time.monotonic() < deadline and chief.poll() is None:
            text = (tmp_path / "log.txt").read_text()
            if text.count(" trial ") >= 2:  # mid-search: a worker has finished a trial and is on its next
                children = [p for p in psutil.Process(chief.pid).children() if "lqsearch.cli" in " ".join(p.cmdline())]
                if len(children) == 2:
                    killed = children[0].pid
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.2)
        assert killed is not None, (tmp_path / "log.txt").read_text()[-3000:]
        assert chief.wait(timeout=900) == 0
    finally:
        if chief.poll() is None:
            chief.kill()
        log.close()
    text = (tmp_path / "log.txt").read_text()
    assert "restarting it" in text and text.count("(trained)") == 1  # the chief prepared, once
    results = json.loads((out / "results.json").read_text())
    completed = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert len(completed) == 8  # none lost
    assert len({json.dumps(t["genome"], sort_keys=True) for t in completed}) == 8  # none repeated
    assert results["study_verdict"] and (out / "report.md").exists()
