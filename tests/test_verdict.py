"""The study's verdict is computed from the numbers: Welch's t-test, outcome, main comparator."""
import pytest
from scipy import stats

from lqsearch.run import verdict


def _row(label, kind, flops, accuracies):
    return {"label": label, "kind": kind, "flops": flops, "test_accuracy": accuracies}


def test_a_clear_win_is_a_significant_beat_with_welchs_p_value():
    searched = _row("Searched", "searched", 0.8e6, [90.1, 90.3, 90.2])
    uniform = _row("Uniform-1x", "uniform", 1.0e6, [88.0, 88.4, 88.2])
    result = verdict.compare(searched, uniform)
    expected_p = stats.ttest_ind([90.1, 90.3, 90.2], [88.0, 88.4, 88.2], equal_var=False).pvalue
    assert result["outcome"] == "beats" and result["p_value"] == pytest.approx(expected_p)
    assert result["difference"] == pytest.approx(2.0) and result["flops_ratio"] == pytest.approx(0.8)
    assert result["sentence"].startswith("Searched beats Uniform-1x: +2.00 ± ")
    assert "at 0.80x its FLOPs (Welch t-test p = " in result["sentence"] and "3 seeds" in result["sentence"]


def test_noise_is_level_and_a_significant_loss_trails():
    level = verdict.compare(_row("S", "searched", 1, [80.0, 90.0, 70.0]), _row("U", "uniform", 1, [81.0, 79.0, 80.0]))
    assert level["outcome"] == "is level with"
    trails = verdict.compare(_row("S", "searched", 1, [70.0, 70.2, 70.1]), _row("U", "uniform", 1, [80.0, 80.1, 79.9]))
    assert trails["outcome"] == "trails"
    single = verdict.compare(_row("S", "searched", 1, [99.0]), _row("U", "uniform", 1, [10.0]))
    assert single["outcome"] == "is level with" and single["p_value"] is None and "one seed: no test" in single["sentence"]


def test_the_main_verdict_takes_the_strongest_alternative_at_no_more_flops():
    rows = [_row("Searched", "searched", 1.0e6, [85.0, 85.2, 85.1]),
            _row("Uniform-1x", "uniform", 1.0e6, [84.0, 84.1, 84.2]),
            _row("Uniform-0.5x", "uniform", 0.5e6, [80.0, 80.1, 80.2]),
            _row("Uniform-2x", "uniform", 2.0e6, [95.0, 95.1, 95.2]),  # costlier: not the comparator
            _row("Full precision", "float", 0.5e6, [99.0, 99.0, 99.1])]  # not a binary alternative
    main = verdict.main_verdict(rows)
    assert main.startswith("Searched beats Uniform-1x:")
    assert "Against costlier rows: Searched trails Uniform-2x: -10.00 ± " in main and "at 0.50x its FLOPs" in main
    assert "Uniform-0.5x" not in main and "Full precision" not in main
    only_costlier = [rows[0], rows[3]]
    assert verdict.main_verdict(only_costlier).startswith("Against costlier rows: Searched trails Uniform-2x")
    assert [c["other"] for c in verdict.comparisons(rows)] == ["Uniform-1x", "Uniform-0.5x", "Uniform-2x", "Full precision"]
    assert verdict.main_verdict(rows[:1]) is None


def test_the_winner_is_chosen_by_the_search_never_by_test_accuracy():
    rows = [_row("Searched", "searched", 1.0, [80.0, 80.0]), _row("Searched #2", "searched", 1.0, [90.0, 90.0]),
            _row("Uniform-1x", "uniform", 1.0, [85.0, 85.0])]
    assert verdict.main_verdict(rows).startswith("Searched trails Uniform-1x")
