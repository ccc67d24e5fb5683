"""Recipes: every shipped recipe smoke-runs; bad input exits 2 and writes nothing; kill and resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lqsearch.run import recipes
from lqsearch.run.runner import run_recipe

SHIPPED = recipes.list_recipes()


def _cli(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "lqsearch.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_the_papers_and_cpu_recipes_are_shipped():
    assert {"quickstart", "vgg_small_cifar10_width", "resnet18_imagenet_width", "mobilenet_m1_imagenet_groups",
            "mobilenet_m2_imagenet_groups", "mobilenet_m3_imagenet_groups", "fashion_mnist_width_cpu",
            "fashion_mnist_groups_cpu", "fashion_mnist_pareto_cpu"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_recipe_header_says_how_to_run_and_how_long(name):
    _, text = recipes.read_recipe_text(name)
    header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
    assert f"lqsearch recipe run {name}" in header and "Time:" in header


def test_paper_recipes_use_the_papers_settings():
    """The settings the papers state; what the search splits hold is tested by behaviour in test_fidelity.py."""
    cifar = recipes.load_recipe("vgg_small_cifar10_width")
    assert (cifar.search.generations, cifar.search.population_size, cifar.evaluation.epochs,
            cifar.search.lam) == (50, 32, 10, 4.0)
    assert cifar.final.epochs == 200 and cifar.final.training.preset == "shen_cifar"
    for module, ceiling in (("m1", 1.55e8), ("m2", 0.80e8), ("m3", 0.50e8)):
        recipe = recipes.load_recipe(f"mobilenet_{module}_imagenet_groups")
        search = recipe.search
        assert (search.population_size, search.num_crossovers, search.num_mutations,
                search.generations) == (50, 25, 25, 20)
        assert search.max_flops == ceiling and recipe.final.epochs == 256
    for name in ("vgg_small_cifar10_width", "resnet18_imagenet_width", "mobilenet_m1_imagenet_groups"):
        recipe = recipes.load_recipe(name)
        assert recipe.search.schedule == "generational" and recipe.final.random_search and recipe.final.seeds >= 3


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.heavy
def test_every_recipe_smoke_runs(name, tmp_path):
    overrides = [f"publish.registry={tmp_path / 'registry'}"]
    recipe = recipes.load_recipe(name, overrides, smoke=True)
    results = run_recipe(recipe, tmp_path / "run", stream=open(os.devnull, "w"))
    completed = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert len(completed) == recipe.search.trials
    assert results["final"]["test_accuracy"] >= 0 and results["pareto"]
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["final"]["test_accuracy"] == results["final"]["test_accuracy"]
    for path in ("recipe.yaml", "report.md", "plots/study.png", "plots/accuracy_vs_flops.png", "plots/layers.png",
                 "plots/fitness.png", "plots/front_by_generation.png", "final/weights.h5"):
        assert (tmp_path / "run" / path).exists(), path
    kinds = [row["kind"] for row in results["study"]]
    if recipe.search.selection == "pareto":  # up to K points of the front, each with its iso-cost row
        assert kinds[0] == "searched" and 1 <= kinds.count("searched") <= recipe.final.front_points
        assert all(row["label"].startswith("Front ") for row in results["study"] if row["kind"] == "searched")
    else:
        assert kinds[0] == "searched" and kinds.count("searched") == recipe.final.top_n
    assert ("random" in kinds) == recipe.final.random_search and ("float" in kinds) == recipe.final.float_twin
    assert all(len(row["test_accuracy"]) == recipe.final.seeds for row in results["study"])
    if recipe.publish.name:
        assert (tmp_path / "registry" / "index.json").exists()


def test_overrides_parse_yaml_scalars_and_nested_keys():
    recipe = recipes.load_recipe("quickstart",
                                 ["search.population_size=8", "search.num_crossovers=4", "search.num_mutations=4",
                                  "search.lambda=null", "evaluation.training.learning_rate=0.01",
                                  "space_options.width_multiplier=0.5"])
    assert recipe.search.population_size == 8 and recipe.search.lam is None
    assert recipe.evaluation.training.learning_rate == 0.01
    assert recipe.space_options == {"width_multiplier": 0.5}


def test_resolved_yaml_loads_back_to_the_same_recipe(tmp_path):
    recipe = recipes.load_recipe("quickstart", ["search.lambda=null", "search.baselines=[1, [0.5, 2, 1, 1, 1, 0.5]]"])
    path = tmp_path / "quickstart.yaml"
    path.write_text(recipes.to_yaml(recipe))
    assert recipes.load_recipe(str(path)) == recipe


@pytest.mark.slow
def test_show_prints_the_resolved_recipe(tmp_path):
    result = _cli("recipe", "show", "quickstart", "search.seed=42", cwd=tmp_path)
    assert result.returncode == 0 and "seed: 42" in result.stdout and "population_size: 6" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["quickstrat"], "Unknown recipe 'quickstrat'. Did you mean 'quickstart'? Available recipes:"),
        (["quickstart", "search.populaton_size=4"], "Did you mean 'search.population_size'?"),
        (["quickstart", "search.population_size=many"], "'search.population_size' must be integer, got 'many'"),
        (["quickstart", "search.mutation_rate=2"],
         "'search.mutation_rate' is out of range: 2; allowed values are in [0, 1]"),
        (["quickstart", "evaluation.mode=fast"], "must be one of scratch, inherit, oneshot"),
        (["quickstart", "search.baselines=[[1, 2]]"], "does not fit space 'vgg_small'"),
        (["quickstart", "space=vgg"], "Unknown search space 'vgg'"),
        (["quickstart", "dataset=cifar11"], "cifar11"),
    ],
)
@pytest.mark.heavy
def test_bad_input_exits_2_with_one_line_and_writes_nothing(args, message, tmp_path):
    result = _cli("recipe", "run", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    errors = [l for l in result.stderr.splitlines() if l.startswith("lqsearch: error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run dir, no registry, nothing


@pytest.mark.slow
@pytest.mark.heavy
def test_out_dir_of_another_recipe_is_refused(tmp_path):
    out = tmp_path / "out"
    first = _cli("recipe", "run", "quickstart", "--smoke", "publish.name=null", "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    second = _cli("recipe", "run", "quickstart", "--smoke", "publish.name=null", "search.seed=99", "--out", str(out),
                  cwd=tmp_path)
    assert second.returncode == 2
    assert "holds a run of a different recipe" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def _run_until_killed(args, cwd, kills_after_lines):
    """Runs the CLI and SIGKILLs it once `kills_after_lines` trial lines were printed; returns those lines."""
    count = []

    def enough(line):
        count.extend([line] if _is_evolution_trial(line) else [])
        return len(count) >= kills_after_lines

    return [line for line in _run_until(args, cwd, enough) if _is_evolution_trial(line)]


def _is_evolution_trial(line: str) -> bool:
    """A progress line of one evolution trial ("gen 2 [...] trial 7 ..."; the random search's say "gen -")."""
    return " trial " in line and line.startswith("gen ") and not line.startswith("gen -")


def _trial_ids(lines):
    return [line.split(" trial ")[1].split()[0] for line in lines]


@pytest.mark.slow
@pytest.mark.heavy
def test_killed_run_resumes_without_repeating_finished_trials(tmp_path):
    args = ["recipe", "run", "quickstart", "--smoke", "publish.name=null", "search.max_trials=6",
            "search.population_size=3", "search.num_crossovers=1", "search.num_mutations=2",
            "--out", str(tmp_path / "run")]
    first = _run_until_killed(args, tmp_path, kills_after_lines=2)
    second = _run_until_killed(args, tmp_path, kills_after_lines=2)
    assert len(first) == 2 and len(second) == 2
    final = _cli(*args, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    finished_before = set(_trial_ids(first)) | set(_trial_ids(second))
    rerun = set(_trial_ids([l for l in final.stdout.splitlines() if _is_evolution_trial(l)]))
    assert not finished_before & rerun
    assert len(finished_before & set(_trial_ids(second))) == 2 and not set(_trial_ids(first)) & set(_trial_ids(second))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    completed = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert len(completed) == 6
    assert len({json.dumps(t["genome"], sort_keys=True) for t in completed}) == 6
    assert results["final"]["test_accuracy"] >= 0


def _run_until(args, cwd, stop_line):
    """Runs the CLI and SIGKILLs it at the first stdout line that `stop_line` accepts; returns the lines."""
    process = subprocess.Popen([sys.executable, "-u", "-m", "lqsearch.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    seen = []
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
            if stop_line(line):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=60)
    return seen


@pytest.mark.slow
@pytest.mark.heavy
def test_a_kill_during_a_baselines_final_training_redoes_nothing_that_finished(tmp_path):
    out = tmp_path / "run"
    args = ["recipe", "run", "quickstart", "--smoke", "publish.name=null", "final.seeds=2", "final.epochs=2",
            "final.random_search=false", "final.float_twin=false", "--out", str(out)]
    killed = _run_until(args, tmp_path, lambda line: "Uniform-1x seed" in line and "epoch 1/2" in line)
    assert any("Uniform-1x seed" in line and "epoch 1/2" in line for line in killed), killed[-5:]
    finished = sorted(p for p in (out / "study").glob("*/model.json"))
    assert len(finished) == 2  # the searched genome, both seeds
    before = {p: p.stat().st_mtime_ns for p in finished}
    resumed = _cli(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == before  # nothing that had finished was retrained
    lines = resumed.stdout.splitlines()
    assert not [line for line in lines if "Searched seed" in line and "epoch" in line]
    assert [line for line in lines if "Uniform-1x seed 7" in line and "epoch" in line] == [
        line for line in lines if "Uniform-1x seed 7: epoch 2/2" in line]  # resumed after its first epoch
    results = json.loads((out / "results.json").read_text())
    assert [row["label"] for row in results["study"]] == ["Searched", "Uniform-1x", "Uniform at the searched FLOPs"]
    assert all(len(row["test_accuracy"]) == 2 for row in results["study"])
    assert results["study_verdict"] and ("seeds" in results["study_verdict"]
                                         or "is the same network as" in results["study_verdict"])
