"""The study's verdict: does the searched network beat its alternatives? Computed from the numbers.

Each comparison takes the test accuracies of two rows over their seeds: the
difference of the means, its standard error, the FLOPs ratio and Welch's
t-test (`scipy.stats.ttest_ind(equal_var=False)`, two-sided). A row "beats"
another when its mean is higher and p < 0.05, "trails" when lower and
p < 0.05, and is "level with" it otherwise (which includes a single seed,
where no test is possible).

The main verdict compares the search's winner (the first searched row, chosen
by search fitness, never by test accuracy) with the strongest row that costs
no more FLOPs (is it dominated?), then with the strongest costlier row (the
papers' claim: as accurate, at a fraction of the FLOPs).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ["compare", "comparisons", "main_verdict", "SIGNIFICANCE"]

SIGNIFICANCE = 0.05


def _welch_p(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 0.0 if np.mean(a) != np.mean(b) else 1.0
    p_value = stats.ttest_ind(a, b, equal_var=False).pvalue
    return float(p_value) if math.isfinite(p_value) else None


def compare(row: Mapping[str, Any], other: Mapping[str, Any]) -> Dict[str, Any]:
    """`row` against `other`: accuracy difference (points), its standard error, FLOPs ratio, Welch p, outcome.

    Arguments:
        row, other: study rows with `label`, `flops` and `test_accuracy` (one value per seed, percent).

    Returns:
        {"label", "other", "difference", "standard_error", "flops_ratio", "p_value", "seeds", "outcome",
        "sentence"}; `outcome` is "beats", "trails" or "is level with".
    """
    a, b = list(row["test_accuracy"]), list(other["test_accuracy"])
    difference = float(np.mean(a) - np.mean(b))
    error = math.sqrt((np.var(a, ddof=1) / len(a) if len(a) > 1 else 0.0)
                      + (np.var(b, ddof=1) / len(b) if len(b) > 1 else 0.0))
    p_value = _welch_p(a, b)
    significant = p_value is not None and p_value < SIGNIFICANCE
    outcome = "is level with" if not significant else ("beats" if difference > 0 else "trails")
    ratio = row["flops"] / other["flops"]
    seeds = min(len(a), len(b))
    test = f"Welch t-test p = {p_value:.2g}, {seeds} seeds" if p_value is not None else "one seed: no test"
    sentence = (f"{row['label']} {outcome} {other['label']}: {difference:+.2f} ± {error:.2f} points of test "
                f"top-1 at {ratio:.2f}x its FLOPs ({test}).")
    return {"label": row["label"], "other": other["label"], "difference": difference, "standard_error": error,
            "flops_ratio": ratio, "p_value": p_value, "seeds": seeds, "outcome": outcome, "sentence": sentence}


def comparisons(rows: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The search's winner against every non-searched row (empty without a searched row)."""
    best = _best_searched(rows)
    if best is None:
        return []
    return [compare(best, other) for other in rows if other["kind"] != "searched"]


def main_verdict(rows: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """The search's winner against the strongest alternative at no more FLOPs, then against the
    strongest costlier one.

    The first sentence asks whether anything as cheap does better (is the winner dominated?);
    the second, "Against costlier rows: ...", whether paying more buys accuracy (the papers'
    claim is "level with or better, at a fraction of the FLOPs"). Either is left out when no
    row falls on its side. The full-precision twin is left out (it is not a binary
    alternative). None when there is no searched row or no alternative.
    """
    best = _best_searched(rows)
    others = [r for r in rows if r["kind"] not in ("searched", "float")]
    if best is None or not others:
        return None
    affordable = [r for r in others if r["flops"] <= best["flops"] * (1 + 1e-9)]
    costlier = [r for r in others if r not in affordable]
    sentences = []
    for prefix, pool in (("", affordable), ("Against costlier rows: ", costlier)):
        if pool:
            strongest = max(pool, key=lambda r: float(np.mean(r["test_accuracy"])))
            sentences.append(prefix + compare(best, strongest)["sentence"])
    return " ".join(sentences)


def _best_searched(rows: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The first searched row: the search's own winner (chosen by search fitness, never by test accuracy)."""
    return next((r for r in rows if r["kind"] == "searched"), None)
