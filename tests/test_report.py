"""The report of a run: Pareto front, per-generation curves, study table and `write_report` on synthetic runs."""
import json
import math
import random

import pytest
from matplotlib.image import imread

import lqsearch.spaces
from lqsearch.run import plots, report, results_view
from lqsearch.run.runner import rebuild_report
from lqsearch.search.pareto import pareto_front

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- pareto_front ---------------------------------------------------------------
def test_pareto_front_empty():
    assert pareto_front([]) == []


def test_pareto_front_single_point():
    assert pareto_front([("a", 50.0, 1e6)]) == ["a"]


def test_pareto_front_drops_dominated_points_and_sorts_by_flops():
    points = [
        ("big", 90.0, 4e6),
        ("dominated", 70.0, 3e6),  # "mid" is more accurate and cheaper
        ("small", 60.0, 1e6),
        ("mid", 80.0, 2e6),
        ("worst", 50.0, 5e6),
    ]
    assert pareto_front(points) == ["small", "mid", "big"]


def test_pareto_front_accepts_any_iterable():
    points = ((k, a, f) for k, a, f in [("x", 1.0, 2.0), ("y", 2.0, 1.0)])
    assert pareto_front(points) == ["y"]


def test_pareto_front_equal_accuracy_keeps_the_cheaper():
    assert pareto_front([("costly", 80.0, 2e6), ("cheap", 80.0, 1e6)]) == ["cheap"]


def test_pareto_front_equal_flops_keeps_the_more_accurate():
    assert pareto_front([("low", 70.0, 1e6), ("high", 75.0, 1e6)]) == ["high"]


def test_pareto_front_keeps_exact_duplicates_in_input_order():
    points = [("b", 80.0, 2e6), ("a", 80.0, 2e6), ("c", 60.0, 1e6), ("d", 60.0, 3e6)]
    assert pareto_front(points) == ["c", "b", "a"]


def test_pareto_front_integer_inputs_and_non_string_keys():
    assert pareto_front([(1, 10, 5), (2, 20, 10), (3, 15, 10)]) == [1, 2]


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), "80", True])
def test_pareto_front_rejects_missing_or_non_finite_values(bad):
    with pytest.raises(ValueError, match="'k'"):
        pareto_front([("k", bad, 1e6)])
    with pytest.raises(ValueError, match="flops"):
        pareto_front([("k", 50.0, bad)])


def test_pareto_front_matches_brute_force():
    rng = random.Random(3)
    points = [(i, rng.choice([50, 60, 70, 80]), rng.choice([1, 2, 3, 4])) for i in range(40)]

    def dominated(p):
        return any(q[1] >= p[1] and q[2] <= p[2] and (q[1] > p[1] or q[2] < p[2]) for q in points)

    expected = {p[0] for p in points if not dominated(p)}
    front = pareto_front(points)
    assert set(front) == expected and len(front) == len(expected)
    flops = [points[k][2] for k in front]
    assert flops == sorted(flops)


# -- best_per_generation ------------------------------------------------------------
def test_best_per_generation_is_a_running_maximum_over_completed_trials():
    trials = [
        {"generation": 0, "status": "COMPLETED", "fitness": 50.0},
        {"generation": 0, "status": "COMPLETED", "fitness": 60.0},
        {"generation": 1, "status": "COMPLETED", "fitness": 55.0},  # worse than gen 0: best stays 60
        {"generation": 1, "status": "FAILED", "fitness": None},
        {"generation": 2, "status": "INVALID", "fitness": 99.0},  # not trained: ignored
        {"generation": 3, "status": "COMPLETED", "fitness": 70.0},
        {"generation": 2, "status": "COMPLETED", "fitness": 65.0},  # order of trials does not matter
    ]
    assert results_view.best_per_generation(trials) == [(0, 60.0), (1, 60.0), (2, 65.0), (3, 70.0)]


def test_median_per_generation_takes_each_generation_alone():
    trials = [{"generation": g, "status": "COMPLETED", "fitness": f} for g,
              f in ((0, 1.0), (0, 3.0), (0, 2.0), (1, 10.0))]
    trials.append({"generation": 1, "status": "FAILED", "fitness": None})
    assert results_view.median_per_generation(trials) == [(0, 2.0), (1, 10.0)]


def test_best_per_generation_empty_and_without_completed_trials():
    assert results_view.best_per_generation([]) == []
    assert results_view.best_per_generation([{"generation": 0, "status": "FAILED", "fitness": None}]) == []


# -- write_report -------------------------------------------------------------------
def _synthetic_results(space, *, with_final=True, with_baselines=True, seed=0, n_trials=14):
    """A results.json dict for `space` with made-up costs: COMPLETED, FAILED and INVALID trials."""
    rng = random.Random(seed)
    reference_flops = 2.0e6
    ceiling = 3.0 * reference_flops

    def cost(genome):
        values = [float(v) for v in space.genome(genome).values()]
        if space.genes.genes[0].kind == "groups":
            return reference_flops * sum(1.0 / v for v in values) / len(values)
        return reference_flops * sum(values) / len(values)

    trials = []
    for i in range(n_trials):
        genome = {g.name: rng.choice(g.values) for g in space.genes}
        status = "INVALID" if i % 7 == 6 else ("FAILED" if i % 5 == 4 else "COMPLETED")
        flops = 1.5 * ceiling if status == "INVALID" else cost(genome)  # INVALID: over the ceiling
        accuracy = 60.0 + 10.0 * math.log1p(flops / reference_flops) + rng.uniform(-2, 2)
        trained = status == "COMPLETED"
        trials.append({
            "trial_id": f"{i:02d}", "generation": i // 4, "genome": genome, "status": status,
            "accuracy": round(accuracy, 2) if trained else None, "flops": flops, "binary_macs": flops * 40,
            "memory_bits": flops / 4, "fitness": round(max(accuracy - 4.0 * flops / reference_flops, 0), 2)
            if trained else None, "duration_s": 1.0,
            "message": "OOM | out of memory" if status == "FAILED" else None,
        })
    done = [t for t in trials if t["status"] == "COMPLETED"]
    best = max(done, key=lambda t: t["fitness"])
    uniform = space.uniform(1)
    results = {
        "recipe": "unit", "space": space.get_config(), "quantizer": "dorefa", "dataset": "embedded",
        "objective": "fitness", "lambda": 4.0, "max_flops": ceiling, "reference_flops": reference_flops,
        "trials": trials,
        "pareto": pareto_front((t["trial_id"], t["accuracy"], t["flops"]) for t in done),
        "baselines": [], "final": None,
    }
    if with_baselines:
        results["baselines"] = [
            {"label": "Uniform-1x", "genome": uniform, "flops": cost(uniform), "memory_bits": 1e5, "accuracy": 66.6},
            {"label": "Uniform-cheap", "genome": space.cheapest(), "flops": cost(space.cheapest()),
             "memory_bits": 5e4, "accuracy": None},
        ]
    if with_final:
        results["final"] = {"genome": best["genome"], "test_accuracy": 83.4, "test_top5": None, "model_dir": "final"}
        results["study"] = [
            _study_row("Searched", "searched", best["genome"], best["flops"], [83.4, 83.0, 83.9]),
            _study_row("Uniform-1x", "uniform", uniform, cost(uniform), [81.0, 81.5, 80.7]),
        ]
        results["study_verdict"] = "Searched beats Uniform-1x: +2.37 ± 0.31 points of test top-1 (made up)."
        results["study_comparisons"] = [results["study_verdict"]]
    return results, best


def _study_row(label, kind, genome, flops, accuracies):
    mean = sum(accuracies) / len(accuracies)
    std = (sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1)) ** 0.5
    return {"label": label, "kind": kind, "genome": genome, "quantizer": "dorefa", "flops": flops,
            "memory_bits": 1e5, "binary_macs": 1e7, "test_accuracy": accuracies, "test_accuracy_mean": mean,
            "test_accuracy_std": std, "model_dirs": ["study/x"]}


def _assert_valid_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(str(path))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= 200 and image.shape[1] >= 300


def _assert_no_temp_files(run_dir):
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.fixture(scope="module")
def vgg():
    return lqsearch.spaces.get("vgg_small", width_multiplier=0.25)


@pytest.fixture(scope="module")
def mobilenet():
    return lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.25)


def test_write_report_vgg_full(tmp_path, vgg):
    results, best = _synthetic_results(vgg)
    results["stop_reason"] = "max_trials reached"
    iso = dict(_study_row("Uniform at the searched FLOPs", "uniform", vgg.uniform(1), best["flops"] * 1.004,
                          [82.0, 82.5, 82.1]), multiplier=0.766)
    results["study"].append(iso)
    for row in results["study"]:
        row["flops_ratio_to_winner"] = row["flops"] / best["flops"]
    paths = report.write_report(tmp_path, results, space=vgg)

    assert set(paths) == {"report", "study", "accuracy_vs_flops", "layers", "fitness", "front_by_generation"}
    assert paths["report"] == tmp_path / "report.md"
    for key in ("study", "accuracy_vs_flops", "layers", "fitness", "front_by_generation"):
        assert paths[key] == tmp_path / "plots" / f"{key}.png"
        _assert_valid_png(paths[key])
    _assert_no_temp_files(tmp_path)

    text = paths["report"].read_text()
    counts = {s: sum(t["status"] == s for t in results["trials"]) for s in ("COMPLETED", "FAILED", "INVALID")}
    assert all(counts.values()), counts  # the synthetic run has every status
    headings = ("# lqsearch report: unit", "## Study", "## Best genomes (top 5 by fitness)", "## Pareto set",
                "## Search phase: uniform baselines", "## Failed trials", "## Plots")
    positions = [text.index(heading) for heading in headings]
    assert positions == sorted(positions)  # the study table opens the report, right after the settings
    assert f"{counts['COMPLETED']} COMPLETED, {counts['FAILED']} FAILED, {counts['INVALID']} INVALID" in text
    assert "vgg_small (width_multiplier=0.25)" in text and "dorefa" in text and "embedded" in text
    assert "| Stop reason | max_trials reached |" in text
    assert "conv1, conv2, conv3, conv4, conv5, conv6" in text

    # The best trial is the first row of the best-genomes table, with its numbers.
    genome_text = "[" + ", ".join(f"{v:g}" for v in vgg.genome(best["genome"]).values()) + "]"
    best_row = f"| {best['trial_id']} | {best['generation']} | {genome_text} | {best['accuracy']:.2f} | " \
               f"{best['flops'] / 1e6:.2f} | {best['flops'] / results['reference_flops']:.3f} | " \
               f"{best['memory_bits'] / 8 / 1024:.1f} | {best['fitness']:.2f} |"
    best_section = text.split("## Best genomes")[1].split("##")[0]
    assert best_section.splitlines()[4] == best_row
    assert len([l for l in best_section.splitlines() if l.startswith("| ") and "Trial" not in l]) == 5

    pareto_section = text.split("## Pareto set")[1].split("\n## ")[0]
    for trial_id in results["pareto"]:
        assert f"| {trial_id} |" in pareto_section

    baselines = text.split("## Search phase: uniform baselines")[1].split("\n## ")[0]
    assert "Uniform-1x" in baselines and "66.60" in baselines and "Uniform-cheap" in baselines
    study = text.split("## Study")[1].split("\n## ")[0]
    assert "| Searched | searched |" in study and "83.43 ± 0.45" in study and "83.40, 83.00, 83.90" in study
    assert "mean ± std, 3 seeds" in study and "top-5" not in study
    assert "**Verdict:** Searched beats Uniform-1x" in study
    assert "| FLOPs / winner |" in study and "| Uniform at the searched FLOPs | uniform | 0.766x every layer |" in study
    assert "| 1.004 |" in study and "| 1.000 |" in study
    assert "[final](final)" in text
    assert "- 04: OOM | out of memory" in text
    for key in ("study", "accuracy_vs_flops", "layers", "fitness", "front_by_generation"):
        assert f"(plots/{key}.png)" in text


def test_write_report_without_final_or_baselines_rebuilds_the_space(tmp_path, vgg):
    results, _ = _synthetic_results(vgg, with_final=False, with_baselines=False, seed=1)
    results = json.loads(json.dumps(results))  # as read back from results.json
    paths = report.write_report(tmp_path / "run", results)  # space rebuilt from results["space"]
    text = paths["report"].read_text()
    assert "The study has not run yet" in text and "Stop reason" not in text
    assert "## Search phase: uniform baselines" not in text
    for key in ("accuracy_vs_flops", "layers", "fitness"):
        _assert_valid_png(paths[key])


def test_write_report_mobilenet_groups(tmp_path, mobilenet):
    results, best = _synthetic_results(mobilenet, seed=2)
    for row in results["study"]:
        row["test_top5"] = [95.5, 96.5, 96.0]
        row["latency_s"] = 0.00125
    paths = report.write_report(tmp_path, results, space=mobilenet)
    text = paths["report"].read_text()
    assert "mobilenet_m1 (fp_shortcut_at_layer1=True, lce_compatible=False, width_multiplier=0.25)" in text
    assert "layer1_groups, layer2_groups" in text
    study = text.split("## Study")[1].split("\n## ")[0]
    assert "Test top-5 % (mean)" in study and "| 96.00 |" in study and "LCE latency (ms)" in study and "1.250" in study
    for key in ("accuracy_vs_flops", "layers", "fitness"):
        _assert_valid_png(paths[key])
    _assert_no_temp_files(tmp_path)


def test_write_report_with_no_completed_trial(tmp_path, vgg):
    results, _ = _synthetic_results(vgg, with_final=False, with_baselines=False)
    for trial in results["trials"]:
        trial.update(status="FAILED", accuracy=None, fitness=None, message="boom")
    results["pareto"] = []
    paths = report.write_report(tmp_path, results, space=vgg)
    text = paths["report"].read_text()
    assert "No completed trial yet." in text and f"0 COMPLETED, {len(results['trials'])} FAILED" in text
    for key in ("accuracy_vs_flops", "layers", "fitness"):
        _assert_valid_png(paths[key])


def test_write_report_computes_the_pareto_set_when_missing_and_notes_unknown_ids(tmp_path, vgg):
    results, _ = _synthetic_results(vgg, with_final=False)
    expected = list(results.pop("pareto"))
    text = report.write_report(tmp_path, results, space=vgg)["report"].read_text()
    section = text.split("## Pareto set")[1].split("\n## ")[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in section.splitlines()[4:] if line.startswith("| ")]
    assert rows == expected

    results["pareto"] = expected + ["99"]
    text = report.write_report(tmp_path, results, space=vgg)["report"].read_text()
    assert "not completed trials: 99" in text


def test_write_report_overwrites_previous_report(tmp_path, vgg):
    results, _ = _synthetic_results(vgg, with_final=False)
    report.write_report(tmp_path, results, space=vgg)
    results["recipe"] = "second"
    text = report.write_report(tmp_path, results, space=vgg)["report"].read_text()
    assert text.startswith("# lqsearch report: second")
    _assert_no_temp_files(tmp_path)


def test_write_report_rejects_a_genome_not_in_the_space(tmp_path, vgg):
    results, _ = _synthetic_results(vgg)
    results["trials"][0]["genome"] = dict(results["trials"][0]["genome"], conv1=0.3)
    results["trials"][0].update(status="COMPLETED", fitness=1000.0, accuracy=99.0)
    with pytest.raises(ValueError, match="conv1"):
        report.write_report(tmp_path, results, space=vgg)


# -- plots and atomicity ------------------------------------------------------------
def _legend_labels(figure):
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def test_accuracy_plot_shows_search_figures_only(vgg):
    results, _ = _synthetic_results(vgg)
    figure = plots.plot_accuracy_vs_flops(results, vgg)
    labels = _legend_labels(figure)
    done = sum(t["status"] == "COMPLETED" for t in results["trials"])
    assert labels == [f"trials ({done})", "Pareto front", "uniform baselines", "uniform baselines (FLOPs only)",
                      "FLOPs ceiling"]  # search-val only: the study's test accuracies are never on this axis
    assert "search-val" in figure.axes[0].get_ylabel()
    assert "test" in plots.plot_study(results).axes[0].get_ylabel()
    axes = plots.plot_accuracy_vs_flops(results, vgg).axes[0]
    assert {"Uniform-1x", " Uniform-cheap"} <= {text.get_text() for text in axes.texts}


def test_layers_plot_bars_are_the_layer_tables(vgg, mobilenet):
    for space, seed in ((vgg, 0), (mobilenet, 2)):
        results, best = _synthetic_results(space, seed=seed, with_final=False)
        axes = plots.plot_layers(results, space).axes[0]
        heights = [bar.get_height() for bar in axes.patches]
        expected = [v for _, v in space.layer_table(space.uniform(1)) + space.layer_table(best["genome"])]
        assert heights == expected
        assert axes.get_ylabel() == ("groups" if space is mobilenet else "output channels")
        assert f"best trial {best['trial_id']}" in axes.get_title()


def test_write_report_does_not_touch_pyplot(tmp_path, vgg):
    import sys

    had_pyplot = "matplotlib.pyplot" in sys.modules  # (matplotlib.get_backend() itself imports pyplot)
    report.write_report(tmp_path, _synthetic_results(vgg)[0], space=vgg)
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_failed_plot_write_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path, vgg, monkeypatch):
    results, _ = _synthetic_results(vgg)
    paths = report.write_report(tmp_path, results, space=vgg)
    before = paths["fitness"].read_bytes()

    def broken_savefig(figure, target, **kwargs):
        target.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        report.write_report(tmp_path, results, space=vgg)
    assert paths["fitness"].read_bytes() == before
    _assert_no_temp_files(tmp_path)


def test_recipe_report_rebuilds_an_identical_report(tmp_path, vgg):
    results, _ = _synthetic_results(vgg)
    (tmp_path / "results.json").write_text(json.dumps(results))
    first = report.write_report(tmp_path, json.loads((tmp_path / "results.json").read_text()))["report"].read_text()
    (tmp_path / "report.md").unlink()
    for plot in (tmp_path / "plots").iterdir():
        plot.unlink()
    paths = rebuild_report(tmp_path)
    assert paths["report"].read_text() == first
    assert all(paths[key].exists() for key in ("study", "accuracy_vs_flops", "layers", "fitness"))
