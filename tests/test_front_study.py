"""A Pareto search's study: K front points (ends in, spread by rank), an iso-cost row each, a verdict per point."""
import json

import pytest

import lqsearch.spaces
from lqsearch.run import front, plots, recipes, report, study, verdict
from lqsearch.run import results_view as view
from lqsearch.run.recipe_text import RecipeError

SHAPE = dict(input_shape=(32, 32, 3), num_classes=10)


def _trial(trial_id, accuracy, flops, generation=0, fitness=None, status="COMPLETED", genome=None):
    return {"trial_id": str(trial_id), "generation": generation, "status": status, "accuracy": accuracy,
            "flops": flops, "fitness": accuracy if fitness is None else fitness,
            "genome": genome if genome is not None else {"id": trial_id}}


# A hand-made search: the front (accuracy up, FLOPs up) is trials 10, 1, 2, 4, 5, 7, 8; the others are dominated,
# failed, or repeat a front point's genome or its (accuracy, FLOPs).
TRIALS = [
    _trial(1, 60.0, 2.0), _trial(2, 65.0, 3.0), _trial(3, 62.0, 3.5), _trial(4, 70.0, 4.0),
    _trial(5, 75.0, 5.0), _trial(6, 74.0, 6.0), _trial(7, 80.0, 7.0), _trial(8, 85.0, 9.0),
    _trial(9, 99.0, 1.0, status="FAILED"), _trial(10, 50.0, 1.0),
    _trial(11, 70.0, 4.0),  # the same values as trial 4: one point
    _trial(12, 95.0, 1.0, genome={"id": 5}),  # trial 5's genome again: counts once, as the earlier trial
]


def test_the_front_is_the_non_dominated_completed_trials_by_cost_once_each():
    assert [t["trial_id"] for t in front.front(TRIALS)] == ["10", "1", "2", "4", "5", "7", "8"]


@pytest.mark.parametrize("n, k, chosen", [
    (7, 3, [0, 3, 6]), (7, 4, [0, 2, 4, 6]), (7, 2, [0, 6]), (10, 4, [0, 3, 6, 9]), (3, 3, [0, 1, 2]),
    (2, 5, [0, 1]), (1, 3, [0]), (0, 3, []), (6, 3, [0, 2, 5]),  # 2.5 rounds half to even
])
def test_points_are_spread_evenly_by_rank_with_both_ends(n, k, chosen):
    assert front.spread(n, k) == chosen


def test_the_study_takes_k_front_points_ends_included_winner_first_labelled_by_cost_rank():
    points = front.front_points(TRIALS, 3)
    assert [t["trial_id"] for t in points] == ["10", "4", "8"]  # cheapest, middle rank, most accurate
    ordered, labels = front.study_order(points)
    assert [t["trial_id"] for t in ordered] == ["8", "10", "4"]  # best search fitness (here the accuracy) first
    assert labels == ["Front 3/3", "Front 1/3", "Front 2/3"]
    penalised = [dict(t, fitness=t["accuracy"] - 10 * t["flops"]) for t in TRIALS]
    ordered, labels = front.study_order(front.front_points(penalised, 3))
    assert [t["trial_id"] for t in ordered][0] == "10" and labels[0] == "Front 1/3"


def test_the_front_can_be_taken_on_another_cost():
    trials = [dict(t, memory_bits=100 - t["flops"]) for t in TRIALS]  # memory falls as FLOPs rise
    assert [t["trial_id"] for t in front.front(trials, "memory_bits")] == ["8"]  # most accurate and smallest


def test_every_front_point_gets_its_own_iso_cost_uniform_row():
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    searched = [{"genome": [2, 2, 2, 1, 2, 2]}, {"genome": [0.5, 0.5, 1, 1, 0.5, 1]}, {"genome": [1, 2, 2, 1, 1, 1]}]
    rows = study.entries(space, searched=searched, baselines=[1], quantizer="bireal",
                         front_labels=["Front 3/3", "Front 1/3", "Front 2/3"], **SHAPE)
    assert [row.label for row in rows] == ["Front 3/3", "Front 1/3", "Front 2/3", "Uniform-1x",
                                           "Uniform at Front 1/3's FLOPs", "Uniform at Front 2/3's FLOPs",
                                           "Uniform at Front 3/3's FLOPs"]
    assert [row.kind for row in rows] == ["searched"] * 3 + ["uniform"] * 4

    def flops(entry):
        return study.entry_space(space, entry).cost(entry.genome, quantizer="bireal", **SHAPE).flops

    for point in rows[:3]:
        iso = next(row for row in rows if row.label == f"Uniform at {point.label}'s FLOPs")
        assert flops(iso) / flops(point) == pytest.approx(1.0, abs=study.ISO_COST_TOLERANCE)
    with pytest.raises(ValueError, match="give one each"):
        study.entries(space, searched=searched, baselines=[], quantizer="bireal", front_labels=["Front 1/1"])


def test_a_group_front_gets_the_bracketing_uniform_counts_of_each_point_once():
    space = lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.25)
    shape = dict(input_shape=(64, 64, 3), num_classes=10)
    middle = {gene.name: gene.values[len(gene.values) // 2] for gene in space.genes}
    rows = study.entries(space, searched=[{"genome": middle}, {"genome": dict(middle)}], baselines=[],
                         quantizer="bireal", front_labels=["Front 2/2", "Front 1/2"], **shape)
    labels = [row.label for row in rows]
    assert labels[2:] == ["Uniform groups=16 (nearest at or below Front 2/2's FLOPs)",
                          "Uniform groups=8 (nearest above Front 2/2's FLOPs)"]  # the same genome: not added twice


def _row(label, kind, flops, accuracies, genome=None):
    return {"label": label, "kind": kind, "flops": flops, "test_accuracy": accuracies, "seeds": [3, 4, 5],
            "quantizer": "bireal", "genome": genome if genome is not None else {"label": label}}


HIGH = _row("Front 2/2", "searched", 1.0e6, [85.0, 85.9, 84.6])
LOW = _row("Front 1/2", "searched", 0.4e6, [80.0, 80.9, 79.6])

#: Two front points, Uniform-1x just outside a 5% band of the cheap one, Uniform-2x the same network as the other.
FRONT_AND_UNIFORMS = [LOW, HIGH, _row("Uniform-1x", "uniform", 0.5e6, [78.0, 78.4, 77.9]),
                      _row("Uniform-2x", "uniform", 1.02e6, [85.3, 85.5, 84.9], genome={"label": "Front 2/2"})]

FRONT_CASES = [
    pytest.param(  # raw p 0.049 (Front 1/2) and 0.109 (Front 2/2) -> Holm over the 2 points: 0.099 and 0.109;
        # Uniform-1x is in Front 1/2's band but less accurate than its iso row; the random row is never compared
        [HIGH, LOW, _row("Uniform-1x", "uniform", 0.41e6, [78.0, 78.4, 77.9]),
         _row("Uniform at Front 2/2's FLOPs", "uniform", 1.01e6, [84.2, 84.6, 84.3]),
         _row("Random search", "random", 1.0e6, [90.0, 90.0, 90.1]),
         _row("Uniform at Front 1/2's FLOPs", "uniform", 0.39e6, [79.0, 79.1, 78.7])], 0.05,
        "Front 1/2 is not significantly different from Uniform at Front 1/2's FLOPs at equal FLOPs (+1.23 ± 0.28 "
        "points, p = 0.099 Holm-adjusted for 2 tests, 3 paired seeds; these seeds detect differences of 1.6 points "
        "or more). Front 2/2 is not significantly different from Uniform at Front 2/2's FLOPs at equal FLOPs (+0.80 "
        "± 0.29 points, p = 0.11 Holm-adjusted for 2 tests, 3 paired seeds; these seeds detect differences of 1.6 "
        "points or more).",
        id="one-sentence-per-point-cheapest-first-holm-over-the-points"),
    pytest.param(
        FRONT_AND_UNIFORMS, 0.05,
        "No uniform row is within ±5% of Front 1/2's FLOPs: no comparison at equal cost. Front 2/2 is the same "
        "network as Uniform-2x.",
        id="no-uniform-row-in-band-and-a-point-that-is-uniform"),
    pytest.param(
        FRONT_AND_UNIFORMS, 0.3,
        "Front 1/2 is significantly more accurate than Uniform-1x at equal FLOPs (+2.07 ± 0.23 points, p = 0.013, "
        "3 paired seeds; these seeds detect differences of 1.3 points or more). Front 2/2 is the same network as "
        "Uniform-2x.",
        id="a-wider-band-takes-uniform-1x-in"),
]


@pytest.mark.parametrize("rows, band, expected", FRONT_CASES)
def test_front_verdict_sentences(rows, band, expected):
    assert verdict.front_verdict(rows, band=band) == expected


def test_front_verdict_without_a_front_point_is_none():
    assert verdict.front_verdict([_row("Uniform-1x", "uniform", 1e6, [1.0, 2.0, 3.0])]) is None


def test_the_front_after_every_generation_is_cumulative():
    trials = [_trial(0, 50.0, 2.0, 0), _trial(1, 40.0, 1.0, 0), _trial(2, 60.0, 2.5, 1), _trial(3, 45.0, 0.5, 2),
              _trial(4, 90.0, 0.1, 2, status="FAILED"), _trial(5, 99.0, 0.1, None)]
    curve = [(g, [t["trial_id"] for t in points]) for g, points in view.front_by_generation(trials)]
    assert curve == [(0, ["1", "0"]), (1, ["1", "0", "2"]), (2, ["3", "0", "2"])]  # 3 dominates 1
    assert view.cost_of({"objectives": ["accuracy", "memory_bits"]}) == "memory_bits" and view.cost_of({}) == "flops"


def test_the_report_draws_the_front_by_generation(tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    trials = [dict(_trial(i, 50.0 + 5 * i, 1e5 * (1 + i), i // 2), genome=space.uniform(1)) for i in range(6)]
    results = {"recipe": "tiny", "space": space.get_config(), "selection": "pareto",
               "objectives": ["accuracy", "flops"], "trials": trials}
    paths = report.write_report(tmp_path, json.loads(json.dumps(results)))
    png = paths["front_by_generation"]
    assert png == tmp_path / report.PLOT_FILES["front_by_generation"] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(plots/front_by_generation.png)" in paths["report"].read_text()
    axes = plots.plot_front_by_generation(results).axes[0]
    assert [line.get_label() for line in axes.get_lines()] == [
        "after generation 0 (2 points)", "after generation 1 (4 points)", "after generation 2 (6 points)"]


def test_front_points_is_a_bounded_final_key_and_the_pareto_recipe_uses_it():
    recipe = recipes.load_recipe("fashion_mnist_pareto_cpu")
    assert recipe.search.selection == "pareto" and recipe.final.front_points >= 2
    assert recipes.load_recipe("quickstart").final.front_points == 3
    for bad in ("1", "17"):
        with pytest.raises(RecipeError, match="front_points"):
            recipes.load_recipe("quickstart", [f"final.front_points={bad}"])
