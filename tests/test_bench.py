"""The benchmarks in bench/ still run against today's API (their smallest settings; figures not checked).

A benchmark is not a test (README, "Benchmarks"): these only run each script end to end on
tiny settings, so that an API change that breaks one fails here instead of at the next
measurement.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

#: script -> (arguments for a short run, lines its output must hold). Missing: bench_oneshot.py (its search-val
#: split takes a fixed share of the train set, so a short run needs new arguments) and bench_oracle.py (160 trials).
SMOKE_RUNS = {
    "bench_speed.py": (["--smoke"], ["== 1. grouped convs", "== 2. analytic cost", "== 3. one-shot evaluation",
                                     "== 4. quickstart", "== 5. first training step", "| step at groups=4 / groups=1 |",
                                     "| build + profile / analytic cost |",
                                     "| scratch / one-shot evaluator, per candidate |",
                                     "| first training step of a new model (median) |"]),
    "bench_training_overhead.py": (["--rounds", "1", "--steps", "2"], ["ratio lqsearch/hand-written"]),
    "bench_lce.py": (["--runs", "2"], ["float / binary:", "LatencyCache:"]),
    "paper_costs.py": ([], ["| table | model | FLOPs ours |", "five FP 1x1 (default)"]),
    "bench_supernet_replicas.py": (["--smoke"], ["== 1. host syncs per 10 supernet steps", "== 2. supernet step time",
                                                 "| step time 2 devices / 1 device |"]),
    "bench_imagenet_path.py": (["--smoke"], ["== 1. reads per pass", "== 2. pipeline throughput", "== 3. memory",
                                             "| decodes per candidate / images used", "| RSS after 4 / after 2"]),
}


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.parametrize("script", sorted(SMOKE_RUNS))
def test_benchmark_runs_on_its_smallest_settings(script, tmp_path):
    arguments, expected = SMOKE_RUNS[script]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(BENCH / script), *arguments], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for text in expected:
        assert text in result.stdout, f"{script}: {text!r} missing from its output:\n{result.stdout[-3000:]}"
