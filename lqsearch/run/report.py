"""The report of a run: the study table and verdict first, then the search (Pareto set, best genomes, plots).

`write_report(run_dir, results)` reads the `results.json` dict written by the
runner and writes, atomically, into `run_dir`:

    report.md                    the study table (papers' layout) and its verdict, the search's
                                 best genomes, Pareto set and baselines, failures, plots
    plots/study.png              test top-1 (mean ± std over seeds) vs FLOPs of every study row
    plots/accuracy_vs_flops.png  search-val accuracy of the trials, Pareto front, baselines' FLOPs
    plots/layers.png             channels (width spaces) or groups (group spaces) per layer
    plots/fitness.png            fitness per generation: every trial, the median, the best so far
    plots/front_by_generation.png  the search's front after every generation: one step line per
                                 generation, the non-dominated set (search-val accuracy, min cost: the
                                 Pareto objectives' cost, FLOPs by default) of the trials completed up to it

It depends on `results` only (no training), so `lqsearch recipe report RUN_DIR`
rebuilds the same files from a finished or interrupted run.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lqsearch import spaces
from lqsearch.io import atomic_write_text
from lqsearch.run import plots
from lqsearch.run import results_view as view

__all__ = ["write_report", "render_markdown", "REPORT_FILE", "PLOT_FILES"]

REPORT_FILE = "report.md"
#: Key in `write_report`'s result -> path of the plot, relative to the run directory.
PLOT_FILES = {
    "study": "plots/study.png",
    "accuracy_vs_flops": "plots/accuracy_vs_flops.png",
    "layers": "plots/layers.png",
    "fitness": "plots/fitness.png",
    "front_by_generation": "plots/front_by_generation.png",
}


def _header_lines(results: Mapping[str, Any], space) -> List[str]:
    trials = results.get("trials", [])
    counts = Counter(t.get("status") for t in trials)
    statuses = list(view.STATUSES) + sorted(str(s) for s in counts if s not in view.STATUSES)
    options = ", ".join(f"{k}={v}" for k, v in sorted(space.options.items()))
    ceiling = results.get("max_flops")
    return [
        f"# lqsearch report: {results.get('recipe') or 'unnamed run'}",
        "",
        *view.table(["Setting", "Value"], [
            ["Recipe", results.get("recipe") or view.MISSING],
            ["Space", f"{space.name} ({options})"],
            ["Quantizer", results.get("quantizer") or view.MISSING],
            ["Dataset", results.get("dataset") or view.MISSING],
            ["Objective", f"{results.get('objective') or 'fitness'} (lambda = {results.get('lambda', view.MISSING)})"],
            ["FLOPs ceiling (M)", "none" if ceiling is None else view.mflops(ceiling)],
            ["Reference FLOPs (M, uniform 1x)", view.mflops(results.get("reference_flops"))],
            ["Trials", f"{len(trials)}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in statuses)],
        ] + ([["Selection", f"pareto (NSGA-II over {', '.join(results.get('objectives') or ())})"]]
             if results.get("selection") == "pareto" else [])
          + ([["Stop reason", results["stop_reason"]]] if results.get("stop_reason") else [])),
        "",
        f"Genomes are listed in gene order: {', '.join(space.genes.names)}.",
    ]


def _trial_rows(trials: Sequence[Mapping[str, Any]], space, reference) -> List[list]:
    return [
        [t["trial_id"], t.get("generation", view.MISSING), view.genome_text(space, t["genome"]),
         view.number(t.get("accuracy")),
         view.mflops(t.get("flops")), view.ratio(t.get("flops"), reference), view.kib(t.get("memory_bits")),
         view.number(t.get("fitness"))]
        for t in trials
    ]


TRIAL_HEADER = ["Trial", "Generation", "Genome", "Accuracy (%)", "FLOPs (M)", "FLOPs ratio", "Memory (KiB)", "Fitness"]


def _best_lines(results: Mapping[str, Any], space) -> List[str]:
    best = view.ranked(results.get("trials", []))[:view.TOP_K]
    lines = ["", f"## Best genomes (top {view.TOP_K} by fitness)", ""]
    if not best:
        return lines + ["No completed trial yet."]
    return lines + view.table(TRIAL_HEADER, _trial_rows(best, space, results.get("reference_flops")))


def _pareto_lines(results: Mapping[str, Any], space) -> List[str]:
    front, unknown = view.pareto_trials(results)
    lines = ["", "## Pareto set (max accuracy, min FLOPs)", ""]
    lines += view.table(TRIAL_HEADER, _trial_rows(front, space, results.get("reference_flops"))) if front else [
        "No completed trial yet."]
    if unknown:
        lines += ["", f"Note: `pareto` lists trial ids that are not completed trials: {', '.join(unknown)}."]
    return lines


def _best_within(trials: Sequence[Mapping[str, Any]], flops: Optional[float]) -> Optional[Mapping[str, Any]]:
    """The most accurate completed trial with FLOPs <= `flops` (fewer FLOPs break ties)."""
    if flops is None:
        return None
    fitting = [t for t in view.plottable(trials) if t["flops"] <= flops]
    return max(fitting, key=lambda t: (t["accuracy"], -t["flops"]), default=None)


def _baseline_lines(results: Mapping[str, Any], space) -> List[str]:
    baselines = results.get("baselines") or []
    if not baselines:
        return []
    reference, rows = results.get("reference_flops"), []
    for base in baselines:
        match = _best_within(results.get("trials", []), base.get("flops"))
        delta = (view.number(match["accuracy"] - base["accuracy"], 2)
                 if match is not None and base.get("accuracy") is not None else view.MISSING)
        found = (f"{match['trial_id']}: {view.number(match['accuracy'])}% at {view.mflops(match['flops'])} M"
                 if match is not None else "none")
        genome = view.genome_text(space, base["genome"]) if base.get("genome") else view.MISSING
        rows.append([base.get("label", view.MISSING), genome, view.mflops(base.get("flops")),
                     view.ratio(base.get("flops"), reference), view.kib(base.get("memory_bits")),
                     view.number(base.get("accuracy")), found, delta])
    header = ["Baseline", "Genome", "FLOPs (M)", "FLOPs ratio", "Memory (KiB)", "Accuracy (%)",
              "Best searched trial at <= these FLOPs", "Accuracy gain (points)"]
    return ["", "## Search phase: uniform baselines against searched trials (search-val, not test)",
            ""] + view.table(header, rows)


def _study_lines(results: Mapping[str, Any], space) -> List[str]:
    """The papers' table: every architecture final-trained under one schedule, test accuracy over seeds."""
    rows = results.get("study")
    lines = ["", "## Study: searched vs uniform and random, final-trained, test set", ""]
    if not rows:
        return lines + ["The study has not run yet (it follows the search)."]
    seeds = len(rows[0]["test_accuracy"])
    top5 = any("test_top5" in row for row in rows)
    latency = any("latency_s" in row for row in rows)
    header = ["Model", "Kind", "Genome", "FLOPs (M)", "FLOPs ratio", "FLOPs / winner", "Memory (KiB)",
              f"Test top-1 % (mean ± std, {seeds} seed{'s' if seeds != 1 else ''})", "Per seed"]
    header += ["Test top-5 % (mean)"] * top5 + ["LCE latency (ms)"] * latency
    body = []
    for row in rows:
        genome = (f"{row['multiplier']:g}x every layer" if row.get("multiplier") is not None
                  else view.genome_text(space, row["genome"]))
        to_winner = row.get("flops_ratio_to_winner")
        cells = [row["label"], row["kind"], genome, view.mflops(row["flops"]),
                 view.ratio(row["flops"], results.get("reference_flops")),
                 f"{to_winner:.3f}" if to_winner is not None else view.MISSING, view.kib(row["memory_bits"]),
                 f"{row['test_accuracy_mean']:.2f} ± {row['test_accuracy_std']:.2f}",
                 ", ".join(f"{a:.2f}" for a in row["test_accuracy"])]
        if top5:
            values = row.get("test_top5")
            cells.append(view.number(sum(values) / len(values)) if values else view.MISSING)
        if latency:
            cells.append(view.number(row["latency_s"] * 1e3, 3) if row.get("latency_s") is not None else view.MISSING)
        body.append(cells)
    lines += view.table(header, body)
    if results.get("study_verdict"):
        what = " (each front point against the uniform row at its cost)" * (results.get("selection") == "pareto")
        lines += ["", f"**Verdict{what}:** {results['study_verdict']}"]
    comparisons = results.get("study_comparisons") or []
    if comparisons:
        whose = (f"Every comparison of the winner, {rows[0]['label']} (the front point of best search fitness), "
                 if results.get("selection") == "pareto" else "Every comparison ")
        lines += ["", whose + "(paired t-test where the seeds pair, else Welch's; Holm-adjusted p over the "
                  "binary rows; significance 0.05; detectable differences at 80% power):", ""]
        lines += [f"- {c}" for c in comparisons]
    final = results.get("final")
    if final and final.get("model_dir"):
        lines += ["", f"The search's winner, first seed, is saved in [{final['model_dir']}]({final['model_dir']})."]
    return lines


def _failure_lines(results: Mapping[str, Any], limit: int = 10) -> List[str]:
    failed = [t for t in results.get("trials", []) if t.get("status") == "FAILED"]
    if not failed:
        return []
    lines = ["", f"## Failed trials ({len(failed)})", ""]
    lines += [f"- {t['trial_id']}: {view.one_line(t.get('message') or 'no message')[:200]}" for t in failed[:limit]]
    return lines + ([f"- ... and {len(failed) - limit} more"] if len(failed) > limit else [])


def _plot_lines() -> List[str]:
    titles = {"study": "Study: test accuracy vs FLOPs", "accuracy_vs_flops": "Search: search-val accuracy vs FLOPs",
              "layers": "Channels or groups per layer", "fitness": "Fitness per generation",
              "front_by_generation": "Search: the front after every generation"}
    lines = ["", "## Plots", ""]
    for key, path in PLOT_FILES.items():
        lines += [f"### {titles[key]}", "", f"![{titles[key]}]({path})", ""]
    return lines


def render_markdown(results: Mapping[str, Any], space) -> str:
    """The text of `report.md` for `results` (a `results.json` dict) in `space`."""
    lines = (_header_lines(results, space) + _study_lines(results, space) + _best_lines(results, space)
             + _pareto_lines(results, space) + _baseline_lines(results, space) + _failure_lines(results)
             + _plot_lines())
    return "\n".join(lines).rstrip() + "\n"


def write_report(run_dir: os.PathLike, results: Mapping[str, Any], *, space=None) -> Dict[str, Path]:
    """Writes `report.md` and the plots of a run into `run_dir`, each file atomically.

    Arguments:
        run_dir: the run directory (created if needed).
        results: the run's `results.json`, as a dict.
        space: the run's `lqsearch.spaces.SearchSpace`; rebuilt from `results["space"]` if None.

    Returns:
        `{"report": path, "study": path, "accuracy_vs_flops": path, "layers": path, "fitness": path,
        "front_by_generation": path}`.

    Raises:
        ValueError: if a genome in `results` is not valid in the space.
    """
    if space is None:
        space = spaces.from_config(results["space"])
    run_dir = Path(run_dir)
    figures = {
        "study": plots.plot_study(results),
        "accuracy_vs_flops": plots.plot_accuracy_vs_flops(results, space),
        "layers": plots.plot_layers(results, space),
        "fitness": plots.plot_fitness(results),
        "front_by_generation": plots.plot_front_by_generation(results),
    }
    text = render_markdown(results, space)
    written = {key: plots.save_png(figure, run_dir / PLOT_FILES[key]) for key, figure in figures.items()}
    report = run_dir / REPORT_FILE
    atomic_write_text(report, text)
    return {"report": report, **written}
