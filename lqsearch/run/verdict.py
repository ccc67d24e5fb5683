"""The study's verdict: is the searched network more accurate than its alternatives at equal cost? From the numbers.

Each comparison takes the test accuracies of two rows over their seeds (points of
test top-1) and gives the difference of the means, its standard error and a
two-sided t-test:

- paired (`scipy.stats.ttest_rel`) when both rows list the same seeds in the same
  order (`seeds`), since a seed fixes the data order and initialization of both;
- Welch's (`scipy.stats.ttest_ind(equal_var=False)`) when the seeds do not pair
  (a row without `seeds`, or different seeds);
- none with a single seed on either side (or a single pair): no test is possible;
- none when the two rows are the same network (same genome, width multiplier and
  quantizer): that is said instead of testing a model against itself.

Every tested comparison also gives the smallest difference its seeds detect: the
difference the test used would find significant (alpha = 0.05, two-sided) with 80%
power, if the standard deviation were the observed one. It is solved on the
noncentral t distribution (`scipy.stats.nct`) with the test's degrees of freedom
(n - 1 paired, Welch-Satterthwaite unpaired), not on a normal approximation. With
Holm's correction the corrected test needs at least that difference.

Holm's step-down correction runs over the winner's tested comparisons with the
binary alternatives (every row but the searched ones and the full-precision twin),
the rows the verdict picks from; the reported p-values are the adjusted ones. The
full-precision twin, never a comparator, is tested on its own.

Equal cost is a relative band: a row whose FLOPs are within `band` (default
+-5%) of the winner's. The main verdict compares the search's winner (the first
searched row, chosen by search fitness, never by test accuracy) with the most
accurate binary row within the band; then says whether the winner is dominated
(a row at fewer FLOPs, outside the band, that is significantly more accurate);
then compares it with the most accurate costlier row.

A Pareto search's study has K front points (searched rows "Front i/K") and no
single winner to judge: `front_verdict` gives one sentence per point, cheapest
first, comparing it with the most accurate uniform row (kind "uniform": the
baselines and the iso-cost rows) within the band of ITS FLOPs, in the same words
as the main verdict; Holm's correction runs over those K comparisons (the tested
ones), the family the verdict draws its conclusions from. Equal cost is FLOPs
there too, whatever cost the search's objectives weighed (the iso-cost rows are
built at FLOPs).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["compare", "comparisons", "main_verdict", "front_comparisons", "front_verdict",
           "holm", "detectable_difference", "SIGNIFICANCE", "POWER",
           "BAND"]

SIGNIFICANCE = 0.05
POWER = 0.8
#: Rows whose FLOPs are within this fraction of the winner's are at equal cost.
BAND = 0.05
_NOT_ALTERNATIVES = ("searched", "float")


def detectable_difference(standard_error: float, dof: float, *, alpha: float = SIGNIFICANCE,
                          power: float = POWER) -> float:
    """The smallest true difference a two-sided t-test detects with `power`, from its standard error.

    Arguments:
        standard_error: the standard error of the difference (points).
        dof: the test's degrees of freedom (may be fractional, as Welch's).
        alpha: the two-sided significance level.
        power: the probability of a significant result at that difference.

    Returns:
        `delta * standard_error`, where the noncentral t distribution with `dof` degrees of freedom
        and noncentrality `delta` exceeds the critical value in absolute value with probability `power`.
    """
    if standard_error <= 0:
        return 0.0
    critical = stats.t.ppf(1 - alpha / 2, dof)

    def shortfall(delta: float) -> float:
        lower = stats.nct.cdf(-critical, dof, delta)  # negligible, and NaN far in the tail
        return stats.nct.sf(critical, dof, delta) + (lower if math.isfinite(lower) else 0.0) - power

    high = 1.0
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12)) * standard_error


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values.

    Arguments:
        p_values: the raw p-values of one family of tests.

    Returns:
        The adjusted p-values, in the order given: the k-th smallest raw p times (m - k + 1), at most 1 and
        never below the adjusted value of a smaller raw p.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _same_network(row: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    return (row.get("genome") is not None and row.get("genome") == other.get("genome")
            and row.get("multiplier") == other.get("multiplier") and row.get("quantizer") == other.get("quantizer"))


def _statistics(row: Mapping[str, Any], other: Mapping[str, Any]) -> Dict[str, Any]:
    """Difference, standard error, test, raw p-value and detectable difference of `row` minus `other`."""
    a, b = np.asarray(row["test_accuracy"], float), np.asarray(other["test_accuracy"], float)
    seeds_a, seeds_b = row.get("seeds"), other.get("seeds")
    paired = (seeds_a is not None and seeds_b is not None and list(seeds_a) == list(seeds_b)
              and len(seeds_a) == len(a) == len(b))
    result = {"difference": float(a.mean() - b.mean()), "paired": paired, "seeds": (len(a), len(b)),
              "test": None, "standard_error": None, "p_value": None, "detectable": None}
    if _same_network(row, other):
        return dict(result, test="same network")
    if (len(a) if paired else min(len(a), len(b))) < 2:
        return result
    if paired:
        differences = a - b
        error, dof = float(np.std(differences, ddof=1) / math.sqrt(len(a))), len(a) - 1
        p_value = stats.ttest_rel(a, b).pvalue if error > 0 else None
    else:
        parts = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
        error = float(math.sqrt(sum(parts)))
        dof = (sum(parts) ** 2 / (parts[0] ** 2 / (len(a) - 1) + parts[1] ** 2 / (len(b) - 1))
               if error > 0 else len(a) + len(b) - 2)
        p_value = stats.ttest_ind(a, b, equal_var=False).pvalue if error > 0 else None
    if error == 0:  # no spread at all: any difference is certain, none is no evidence
        p_value = 0.0 if result["difference"] != 0 else 1.0
    return dict(result, test="paired t-test" if paired else "Welch t-test", standard_error=error,
                p_value=float(p_value), detectable=detectable_difference(error, dof))


def _where(result: Mapping[str, Any]) -> str:
    return "at equal FLOPs" if result["equal_cost"] else f"at {result['flops_ratio']:.2f}x its FLOPs"


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "\u2212")


def _p_text(p_value: float, tests: int) -> str:
    text = "p < 0.001" if p_value < 0.001 else f"p = {p_value:.2g}"
    return text + (f" Holm-adjusted for {tests} tests" if tests > 1 else "")


def _points(value: float) -> str:
    """Two significant digits (1.9, 0.52, 12), or "less than 0.01"."""
    if value < 0.01:
        return "less than 0.01"
    decimals = max(0, 1 - math.floor(math.log10(value)))
    return f"{round(value, decimals):.{decimals}f}"


def _phrase(result: Mapping[str, Any]) -> str:
    """What the winner is against the other row, with the numbers, e.g. "is not significantly different from
    Uniform-1x at equal FLOPs (−0.40 ± 0.60 points, p = 0.52, 3 paired seeds; these seeds detect ...)"."""
    other, where = result["other"], _where(result)
    if result["outcome"] == "same network":
        return f"is the same network as {other}"
    difference = result["difference"]
    if result["outcome"] == "no test":
        side = "above" if difference >= 0 else "below"
        return f"is {abs(difference):.2f} points {side} {other} {where}, on one seed: no test is possible"
    verb = {"more accurate": "is significantly more accurate than",
            "less accurate": "is significantly less accurate than",
            "not significantly different": "is not significantly different from"}[result["outcome"]]
    count = result["seeds"]
    seeds = f"{count[0]} paired seeds" if result["paired"] else f"{count[0]} and {count[1]} unpaired seeds (Welch)"
    return (f"{verb} {other} {where} ({_signed(difference)} ± {result['standard_error']:.2f} points, "
            f"{_p_text(result['p_adjusted'], result['tests'])}, {seeds}; these seeds detect differences of "
            f"{_points(result['detectable'])} points or more)")


def _worded(result: Dict[str, Any], p_adjusted: Optional[float], tests: int) -> Dict[str, Any]:
    """Adds the adjusted p-value, the outcome and the sentence to a comparison."""
    result = dict(result, p_adjusted=p_adjusted, tests=tests)
    if result["test"] == "same network":
        result["outcome"] = "same network"
    elif p_adjusted is None:
        result["outcome"] = "no test"
    elif p_adjusted < SIGNIFICANCE:
        result["outcome"] = "more accurate" if result["difference"] > 0 else "less accurate"
    else:
        result["outcome"] = "not significantly different"
    result["sentence"] = f"{result['label']} {_phrase(result)}."
    return result


def _raw(row: Mapping[str, Any], other: Mapping[str, Any], band: float) -> Dict[str, Any]:
    ratio = row["flops"] / other["flops"]
    return {"label": row["label"], "other": other["label"], "flops_ratio": ratio,
            "equal_cost": abs(other["flops"] / row["flops"] - 1) <= band + 1e-9, **_statistics(row, other)}


def compare(row: Mapping[str, Any], other: Mapping[str, Any], *, band: float = BAND) -> Dict[str, Any]:
    """`row` against `other` alone (no correction for other comparisons).

    Arguments:
        row, other: study rows with `label`, `flops`, `test_accuracy` (one value per seed, percent, in seed
            order) and optionally `seeds` (pairs the test), `genome`, `multiplier` and `quantizer` (to tell
            the same network).
        band: relative FLOPs band of equal cost (0.05: within +-5% of `row`'s FLOPs).

    Returns:
        {"label", "other", "flops_ratio" (row / other), "equal_cost", "difference" (points, row minus
        other), "standard_error", "paired", "seeds" (counts), "test", "p_value", "p_adjusted", "tests",
        "detectable" (points), "outcome", "sentence"}; `outcome` is "more accurate", "less accurate",
        "not significantly different", "no test" or "same network".
    """
    result = _raw(row, other, band)
    return _worded(result, result["p_value"], 1)


def comparisons(rows: Sequence[Mapping[str, Any]], *, band: float = BAND) -> List[Dict[str, Any]]:
    """The search's winner against every non-searched row, Holm-corrected over the binary alternatives.

    Arguments:
        rows: the study table, searched rows first.
        band: relative FLOPs band of equal cost.

    Returns:
        One `compare`-like result per non-searched row, in table order (empty without a searched row);
        `p_adjusted` is Holm's over the tested comparisons with binary alternatives (the full-precision
        twin's is its own p).
    """
    best = _best_searched(rows)
    if best is None:
        return []
    raws = [(other, _raw(best, other, band)) for other in rows if other["kind"] != "searched"]
    family = [i for i, (other, raw) in enumerate(raws) if other["kind"] != "float" and raw["p_value"] is not None]
    adjusted = dict(zip(family, holm([raws[i][1]["p_value"] for i in family])))
    return [_worded(raw, adjusted[i], len(family)) if i in adjusted else _worded(raw, raw["p_value"], 1)
            for i, (_, raw) in enumerate(raws)]


def main_verdict(rows: Sequence[Mapping[str, Any]], *, band: float = BAND) -> Optional[str]:
    """The search's winner at equal cost, then whether it is dominated, then against costlier rows.

    Arguments:
        rows: the study table, searched rows first (the first is the search's winner).
        band: relative FLOPs band of equal cost (0.05: within +-5% of the winner's FLOPs).

    Returns:
        Up to three sentences: the winner against the most accurate binary row within the band (or that
        there is none); whether a binary row at fewer FLOPs outside the band is significantly more accurate
        (dominated), left out when there is none; "Against costlier rows: ..." against the most accurate
        row above the band, left out when there is none. The full-precision twin and the other searched
        rows are never comparators. None when there is no searched row or no alternative.
    """
    best = _best_searched(rows)
    if best is None:
        return None
    results = dict(zip((i for i, r in enumerate(rows) if r["kind"] != "searched"), comparisons(rows, band=band)))
    others = [i for i, r in enumerate(rows) if r["kind"] not in _NOT_ALTERNATIVES]
    if not others:
        return None
    mean = {i: float(np.mean(rows[i]["test_accuracy"])) for i in others}
    in_band = [i for i in others if results[i]["equal_cost"]]
    cheaper = [i for i in others if i not in in_band and rows[i]["flops"] <= best["flops"]]
    costlier = [i for i in others if i not in in_band and i not in cheaper]
    if in_band:
        sentences = [results[max(in_band, key=mean.get)]["sentence"]]
    else:
        sentences = [f"No alternative is within ±{band:.0%} of {best['label']}'s FLOPs: no comparison at equal cost."]
    if cheaper:
        sentences.append(_dominance(best["label"], sorted(cheaper, key=mean.get, reverse=True), results))
    if costlier:
        sentences.append(f"Against costlier rows: {results[max(costlier, key=mean.get)]['sentence']}")
    return " ".join(sentences)


def _dominance(label: str, cheaper: Sequence[int], results: Mapping[int, Mapping[str, Any]]) -> str:
    """Is the winner dominated: is a row at fewer FLOPs (outside the band) significantly more accurate?

    `cheaper` holds the indices of those rows, most accurate first."""
    dominating = [i for i in cheaper if results[i]["outcome"] == "less accurate"]
    if dominating:
        return f"{label} is dominated: it {_phrase(results[dominating[0]])}."
    strongest = results[cheaper[0]]
    if strongest["outcome"] == "no test":
        return f"Whether {label} is dominated cannot be tested: against the most accurate cheaper row, it " \
               f"{_phrase(strongest)}."
    if strongest["outcome"] == "more accurate":
        return f"{label} is not dominated: against the most accurate cheaper row, it {_phrase(strongest)}."
    return (f"{label} is not shown to be dominated: no cheaper row is significantly more accurate; against the "
            f"most accurate, it {_phrase(strongest)}.")


def _best_searched(rows: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The first searched row: the search's own winner (chosen by search fitness, never by test accuracy)."""
    return next((r for r in rows if r["kind"] == "searched"), None)


def front_comparisons(rows: Sequence[Mapping[str, Any]], *, band: float = BAND) -> List[Dict[str, Any]]:
    """Each front point (searched row) against the uniform row at its cost, Holm-corrected over the points.

    Arguments:
        rows: the study table of a Pareto search (its searched rows are the front points).
        band: relative FLOPs band of equal cost around each point's FLOPs.

    Returns:
        One result per searched row, fewest FLOPs first: a `compare`-like result against the most accurate
        uniform row within the band (`p_adjusted`: Holm's over the tested comparisons of the points), or,
        when no uniform row is within the band, {"label", "other": None, "outcome": "no comparison",
        "sentence"}.
    """
    points = sorted((r for r in rows if r["kind"] == "searched"), key=lambda r: r["flops"])
    uniforms = [r for r in rows if r["kind"] == "uniform"]
    raws: List[Optional[Dict[str, Any]]] = []
    for point in points:
        in_band = [u for u in uniforms if abs(u["flops"] / point["flops"] - 1) <= band + 1e-9]
        other = max(in_band, key=lambda u: float(np.mean(u["test_accuracy"])), default=None)
        raws.append(_raw(point, other, band) if other is not None else None)
    family = [i for i, raw in enumerate(raws) if raw is not None and raw["p_value"] is not None]
    adjusted = dict(zip(family, holm([raws[i]["p_value"] for i in family])))
    results = []
    for i, (point, raw) in enumerate(zip(points, raws)):
        if raw is None:
            results.append({"label": point["label"], "other": None, "outcome": "no comparison",
                            "sentence": f"No uniform row is within ±{band:.0%} of {point['label']}'s FLOPs: "
                                        "no comparison at equal cost."})
        else:
            results.append(_worded(raw, adjusted.get(i), len(family)))
    return results


def front_verdict(rows: Sequence[Mapping[str, Any]], *, band: float = BAND) -> Optional[str]:
    """The verdict of a Pareto search: one sentence per front point, fewest FLOPs first (`front_comparisons`).

    Returns:
        The sentences joined, or None without a searched row.
    """
    sentences = [result["sentence"] for result in front_comparisons(rows, band=band)]
    return " ".join(sentences) if sentences else None
