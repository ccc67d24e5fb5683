"""The study's verdict is computed from the numbers: paired or Welch t-tests, Holm, detectable differences, the band."""
import pytest
from scipy import stats

from lqsearch.run import verdict

SEEDS = [3, 4, 5]


def _row(label, kind, flops, accuracies, seeds=SEEDS, genome=None):
    row = {"label": label, "kind": kind, "flops": flops, "test_accuracy": accuracies, "quantizer": "bireal",
           "genome": genome if genome is not None else {"label": label}}
    if seeds is not None:
        row["seeds"] = seeds
    return row


WINNER = _row("Searched", "searched", 1.0e6, [85.0, 85.9, 84.6], genome={"conv": 2})
# Differences from the winner, seed by seed: 0.8, 1.3, 0.3 (mean 0.80, sd 0.50, standard error 0.29, t = 2.77,
# paired p = 0.109 on 2 degrees of freedom; the detectable difference is 5.65 standard errors = 1.6 points).
CLOSE = [84.2, 84.6, 84.3]

CASES = [
    pytest.param(
        [WINNER, _row("Uniform at the searched FLOPs", "uniform", 1.03e6, CLOSE)], 0.05,
        "Searched is not significantly different from Uniform at the searched FLOPs at equal FLOPs (+0.80 ± 0.29 "
        "points, p = 0.11, 3 paired seeds; these seeds detect differences of 1.6 points or more).",
        id="in-band-paired-p0.11-not-significant"),
    pytest.param(
        [WINNER, _row("Uniform-1x", "uniform", 1.06e6, CLOSE)], 0.05,
        "No alternative is within ±5% of Searched's FLOPs: no comparison at equal cost. Against costlier rows: "
        "Searched is not significantly different from Uniform-1x at 0.94x its FLOPs (+0.80 ± 0.29 points, p = 0.11, "
        "3 paired seeds; these seeds detect differences of 1.6 points or more).",
        id="out-of-band-is-costlier"),
    pytest.param(
        [WINNER, _row("Uniform-1x", "uniform", 1.06e6, CLOSE)], 0.10,
        "Searched is not significantly different from Uniform-1x at equal FLOPs (+0.80 ± 0.29 points, p = 0.11, "
        "3 paired seeds; these seeds detect differences of 1.6 points or more).",
        id="a-wider-band-takes-it-in"),
    pytest.param(  # no seeds on the uniform row: unpaired, Welch (se 0.40 on 2.39 degrees of freedom)
        [WINNER, _row("Uniform-1x", "uniform", 0.98e6, CLOSE, seeds=None)], 0.05,
        "Searched is not significantly different from Uniform-1x at equal FLOPs (+0.80 ± 0.40 points, p = 0.16, "
        "3 and 3 unpaired seeds (Welch); these seeds detect differences of 2.0 points or more).",
        id="welch-without-pairs"),
    pytest.param(  # raw p 0.109, 0.00087, 0.0021 -> Holm 0.109, 0.0026, 0.0041; the float twin is tested on its own
        [WINNER, _row("Uniform at the searched FLOPs", "uniform", 0.99e6, CLOSE),
         _row("Uniform-0.5x", "uniform", 0.5e6, [80.1, 80.7, 79.9]),
         _row("Uniform-2x", "uniform", 2.0e6, [87.0, 88.2, 86.9]),
         _row("Full precision", "float", 9e6, [91.0, 91.2, 90.8])], 0.05,
        "Searched is not significantly different from Uniform at the searched FLOPs at equal FLOPs (+0.80 ± 0.29 "
        "points, p = 0.11 Holm-adjusted for 3 tests, 3 paired seeds; these seeds detect differences of 1.6 points or "
        "more). Searched is not dominated: against the most accurate cheaper row, it is significantly more accurate "
        "than Uniform-0.5x at 2.00x its FLOPs (+4.93 ± 0.15 points, p = 0.0026 Holm-adjusted for 3 tests, 3 paired "
        "seeds; these seeds detect differences of 0.82 points or more). Against costlier rows: Searched is "
        "significantly less accurate than Uniform-2x at 0.50x its FLOPs (\u22122.20 ± 0.10 points, p = 0.0041 "
        "Holm-adjusted for 3 tests, 3 paired seeds; these seeds detect differences of 0.57 points or more).",
        id="holm-over-three-binary-rows"),
    pytest.param(  # raw p 0.029 and 0.049, both below 0.05; Holm makes both 0.057: neither is significant
        [WINNER, _row("Uniform at the searched FLOPs", "uniform", 1.02e6, [84.0, 84.6, 83.9]),
         _row("Uniform-0.5x", "uniform", 0.5e6, [84.0, 84.5, 84.0])], 0.05,
        "Searched is not significantly different from Uniform at the searched FLOPs at equal FLOPs (+1.00 ± 0.17 "
        "points, p = 0.057 Holm-adjusted for 2 tests, 3 paired seeds; these seeds detect differences of 0.98 points "
        "or more). Searched is not shown to be dominated: no cheaper row is significantly more accurate; against the "
        "most accurate, it is not significantly different from Uniform-0.5x at 2.00x its FLOPs (+1.00 ± 0.23 points, "
        "p = 0.057 Holm-adjusted for 2 tests, 3 paired seeds; these seeds detect differences of 1.3 points or more).",
        id="holm-turns-two-raw-significant-results-off"),
    pytest.param(
        [WINNER, _row("Uniform-2x", "uniform", 1.0e6, [85.3, 85.5, 84.9], genome={"conv": 2}),
         _row("Uniform-1x", "uniform", 0.4e6, [84.9, 86.2, 84.1])], 0.05,
        "Searched is the same network as Uniform-2x. Searched is not shown to be dominated: no cheaper row is "
        "significantly more accurate; against the most accurate, it is not significantly different from Uniform-1x at "
        "2.50x its FLOPs (+0.10 ± 0.23 points, p = 0.71, 3 paired seeds; these seeds detect differences of 1.3 points "
        "or more).",
        id="winner-equal-to-a-baseline"),
    pytest.param(
        [WINNER, _row("Uniform-0.5x", "uniform", 0.5e6, [87.0, 87.8, 86.7])], 0.05,
        "No alternative is within ±5% of Searched's FLOPs: no comparison at equal cost. Searched is dominated: it is "
        "significantly less accurate than Uniform-0.5x at 2.00x its FLOPs (\u22122.00 ± 0.06 points, p < 0.001, "
        "3 paired seeds; these seeds detect differences of 0.33 points or more).",
        id="dominated-by-a-cheaper-row"),
    pytest.param(
        [_row("Searched", "searched", 1.0e6, [85.0], seeds=[3]),
         _row("Uniform-1x", "uniform", 1.0e6, [84.4], seeds=[3]),
         _row("Uniform-0.5x", "uniform", 0.5e6, [80.0], seeds=[3])], 0.05,
        "Searched is 0.60 points above Uniform-1x at equal FLOPs, on one seed: no test is possible. Whether Searched "
        "is dominated cannot be tested: against the most accurate cheaper row, it is 5.00 points above Uniform-0.5x at "
        "2.00x its FLOPs, on one seed: no test is possible.",
        id="one-seed-no-test"),
]


@pytest.mark.parametrize("rows, band, expected", CASES)
def test_the_main_verdict_says_what_the_seeds_can_tell(rows, band, expected):
    assert verdict.main_verdict(rows, band=band) == expected
    assert "level" not in expected


def test_paired_rows_use_ttest_rel_and_unpaired_rows_welch():
    uniform = _row("Uniform-1x", "uniform", 1.0e6, CLOSE)
    paired = verdict.compare(WINNER, uniform)
    assert paired["paired"] and paired["test"] == "paired t-test"
    assert paired["p_value"] == pytest.approx(stats.ttest_rel(WINNER["test_accuracy"], CLOSE).pvalue)
    for other_seeds in (None, [4, 5, 6]):  # no seeds, or other seeds: no pairs
        welch = verdict.compare(WINNER, _row("Uniform-1x", "uniform", 1.0e6, CLOSE, seeds=other_seeds))
        assert not welch["paired"] and welch["test"] == "Welch t-test"
        assert welch["p_value"] == pytest.approx(stats.ttest_ind(WINNER["test_accuracy"], CLOSE,
                                                                 equal_var=False).pvalue)


def test_holm_adjusts_step_down_and_comparisons_report_the_adjusted_p():
    assert verdict.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert verdict.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    rows = CASES[4].values[0]
    results = verdict.comparisons(rows)
    assert [r["other"] for r in results] == ["Uniform at the searched FLOPs", "Uniform-0.5x", "Uniform-2x",
                                             "Full precision"]
    raw = [r["p_value"] for r in results[:3]]
    assert [r["p_adjusted"] for r in results[:3]] == pytest.approx(verdict.holm(raw))
    assert results[3]["p_adjusted"] == results[3]["p_value"] and results[3]["tests"] == 1


def test_the_detectable_difference_is_solved_on_the_noncentral_t_not_a_normal_approximation():
    # 80% power, alpha 0.05 two-sided: 5.65 standard errors with 2 degrees of freedom (3 pairs), where the
    # normal approximation (1.96 + 0.84) would claim 2.80; with many degrees of freedom the two agree.
    assert verdict.detectable_difference(1.0, 2) == pytest.approx(5.6535, abs=1e-3)
    assert verdict.detectable_difference(0.5, 2) == pytest.approx(0.5 * 5.6535, abs=1e-3)
    assert verdict.detectable_difference(1.0,
                                         10_000) == pytest.approx(stats.norm.ppf(0.975) + stats.norm.ppf(0.8), abs=1e-2)
    critical = stats.t.ppf(0.975, 2)
    assert stats.nct.sf(critical, 2, 5.6535) + stats.nct.cdf(-critical, 2, 5.6535) == pytest.approx(0.8, abs=1e-4)
    assert verdict.detectable_difference(0.0, 2) == 0.0


def test_the_winner_is_chosen_by_the_search_never_by_test_accuracy():
    rows = [_row("Searched", "searched", 1.0, [80.0, 80.0, 80.1]),
            _row("Searched #2", "searched", 1.0, [90.0, 90.0, 90.1]),
            _row("Uniform-1x", "uniform", 1.0, [85.0, 85.2, 85.1])]
    expected = "Searched is significantly less accurate than Uniform-1x at equal FLOPs"
    assert verdict.main_verdict(rows).startswith(expected)
    assert [c["other"] for c in verdict.comparisons(rows)] == ["Uniform-1x"]
    assert verdict.main_verdict(rows[:2]) is None and verdict.main_verdict(rows[2:]) is None
