"""`lqsearch recipe plan`: what a run will do and cost, per stage; nothing trained for real, nothing written."""
import os

import pytest

from lqsearch import cli
from lqsearch.run import recipes
from lqsearch.run.plan import ONESHOT_TRIAL_OVERHEAD_S, format_plan, plan_recipe


def _snapshot(folder):
    return sorted((str(path), path.stat().st_size) for path in folder.rglob("*"))


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_every_recipe_plans_its_stages_without_a_probe(name):
    if "fashion_mnist" in name and not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("needs the Debian package dataset-fashion-mnist")
    recipe = recipes.load_recipe(name)
    plan = plan_recipe(recipe, probe=False)
    names = [stage["name"] for stage in plan["stages"]]
    first = {"scratch": [], "inherit": ["widest network"], "oneshot": ["supernet"]}[recipe.evaluation.mode]
    assert names == [*first, "search candidates", *(["random search"] * recipe.final.random_search), "study", "final"]
    search = next(stage for stage in plan["stages"] if stage["name"] == "search candidates")
    assert search["evaluations"] >= recipe.search.trials
    study = next(stage for stage in plan["stages"] if stage["name"] == "study")
    assert study["trainings"] % recipe.final.seeds == 0 and study["epochs"] == recipe.final.epochs
    assert plan["seconds"] is None and "not projected" in format_plan(plan)
    assert (plan["paper"] is not None) == (name.endswith(("imagenet_width", "cifar10_width", "imagenet_groups")))


def test_the_inherit_and_oneshot_stages_and_the_paper_figures():
    width = plan_recipe(recipes.load_recipe("resnet18_imagenet_width"), probe=False)
    widest = width["stages"][0]
    assert widest["name"] == "widest network" and widest["epochs"] == 150
    assert widest["steps"] == 150 * (50_000 // 256 + 1)  # 50 per class, batch 256
    assert "180 hours on 8 V100" in width["paper"]
    groups = plan_recipe(recipes.load_recipe("mobilenet_m1_imagenet_groups"), probe=False)
    assert groups["stages"][0]["name"] == "supernet" and groups["stages"][0]["steps"] == 160_000
    assert "30 GPU-hours" in groups["paper"]
    assert any("ImageNet search subsets" in key for key in groups["disk_bytes"])


@pytest.mark.slow
def test_recipe_plan_probes_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    assert cli.main(["recipe", "plan", "quickstart", "search.generations=1"]) == 0
    out = capsys.readouterr().out
    assert _snapshot(tmp_path) == before  # nothing written in the working directory (no runs/, no registry/)
    for text in ("search candidates", "random search", "study", "Disk:", "Host RAM", "projected, not measured",
                 "probing on this CPU", "Nothing was trained"):
        assert text in out


@pytest.mark.parametrize("args, message", [
    (["recipe", "plan", "quickstrat"], "quickstart"),
    (["recipe", "plan", "quickstart", "search.population=3"], "search.population"),
    (["recipe", "plan", "quickstart", "final.epochs=-1"], "final.epochs"),
])
def test_bad_input_is_refused_like_recipe_run(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err
    assert not any(tmp_path.iterdir())


def test_a_pareto_study_counts_its_front_points_and_their_iso_cost_rows():
    def study_rows(*overrides):
        recipe = recipes.load_recipe("quickstart", list(overrides))
        stage = next(s for s in plan_recipe(recipe, probe=False)["stages"] if s["name"] == "study")
        return stage["trainings"] // recipe.final.seeds

    # fitness: the winner, its iso-cost row, the random search's best, Uniform-1x and 2x
    assert study_rows() == 5
    # pareto with K = 4: four points, an iso-cost row each, random search, two baselines
    assert study_rows("search.selection=pareto", "final.front_points=4") == 4 * 2 + 1 + 2



def test_a_group_study_counts_the_rows_the_run_builds():
    # fashion_mnist_groups_cpu's run trained 6 rows: the winner (under the ceiling, the FLOPs of uniform groups=4),
    # baselines groups=1, 4, 16, ONE iso-cost row (groups=8 below the winner; the one above is the groups=4
    # baseline, not added twice) and the random search's best. The plan counted that baseline again (7 rows).
    recipe = recipes.load_recipe("fashion_mnist_groups_cpu", [])
    stage = next(s for s in plan_recipe(recipe, probe=False)["stages"] if s["name"] == "study")
    assert stage["trainings"] == 6 * recipe.final.seeds


@pytest.mark.slow
def test_a_oneshot_plan_probes_the_supernet_and_a_oneshot_candidate():
    recipe = recipes.load_recipe("quickstart", ["evaluation.mode=oneshot", "evaluation.supernet_steps=100"])
    plan = plan_recipe(recipe)
    supernet = next(s for s in plan["stages"] if s["name"] == "supernet")
    candidates = next(s for s in plan["stages"] if s["name"] == "search candidates")
    assert supernet["seconds"] > 0 and candidates["seconds"] > 0
    per_candidate = candidates["seconds"] / candidates["evaluations"]
    assert per_candidate > ONESHOT_TRIAL_OVERHEAD_S  # the probed recalibration and scoring, plus the bookkeeping
