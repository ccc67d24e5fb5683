"""The report of a search run: Pareto front, best genomes, channels/groups per layer, fitness curve.

`write_report(run_dir, results)` reads the `results.json` dict written by the
search runner and writes, atomically, into `run_dir`:

    report.md                    header, best genomes, Pareto set, uniform baselines, final model
    plots/accuracy_vs_flops.png  completed trials, Pareto front, baselines, final genome
    plots/layers.png             channels (width spaces) or groups (group spaces) per layer
    plots/fitness.png            best fitness so far, per generation

Plots are drawn on `matplotlib.figure.Figure` objects with the Agg canvas, so
no global pyplot state or backend is touched.
"""
from __future__ import annotations

import io
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from lqsearch import spaces
from lqsearch.io import atomic_write_bytes, atomic_write_text
from lqsearch.search.pareto import pareto_front

__all__ = ["pareto_front", "best_per_generation", "write_report", "REPORT_FILE", "PLOT_FILES"]

REPORT_FILE = "report.md"
#: Key in `write_report`'s result -> path of the plot, relative to the run directory.
PLOT_FILES = {
    "accuracy_vs_flops": "plots/accuracy_vs_flops.png",
    "layers": "plots/layers.png",
    "fitness": "plots/fitness.png",
}
STATUSES = ("COMPLETED", "FAILED", "INVALID")
TOP_K = 5
MISSING = "n/a"


# -- pure helpers -------------------------------------------------------------
def best_per_generation(trials: Iterable[Mapping[str, Any]]) -> List[Tuple[int, float]]:
    """[(generation, best fitness so far)] over COMPLETED trials with a fitness, by generation.

    The best fitness of a generation includes every earlier generation. Generations
    without a completed trial are left out.
    """
    best_in = {}
    for trial in _completed(trials):
        generation = int(trial["generation"])
        best_in[generation] = max(best_in.get(generation, -math.inf), float(trial["fitness"]))
    curve, best = [], -math.inf
    for generation in sorted(best_in):
        best = max(best, best_in[generation])
        curve.append((generation, best))
    return curve


def _completed(trials: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The COMPLETED trials that have a fitness (the ones that can be ranked)."""
    return [t for t in trials if t.get("status") == "COMPLETED" and t.get("fitness") is not None]


def _ranked(trials: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Completed trials, best fitness first; ties go to fewer FLOPs, then to the trial id."""
    return sorted(
        _completed(trials),
        key=lambda t: (-t["fitness"], t.get("flops") if t.get("flops") is not None else math.inf, str(t["trial_id"])),
    )


def _plottable(trials: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """COMPLETED trials with both an accuracy and a FLOPs count."""
    return [
        t for t in trials
        if t.get("status") == "COMPLETED" and t.get("accuracy") is not None and t.get("flops") is not None
    ]


def _pareto_trials(results: Mapping[str, Any]) -> Tuple[List[Mapping[str, Any]], List[str]]:
    """The Pareto trials, sorted by FLOPs, and the ids listed in `results["pareto"]` that are unknown.

    Uses the runner's `results["pareto"]` when present, else computes the front of
    the completed trials.
    """
    candidates = {str(t["trial_id"]): t for t in _plottable(results.get("trials", []))}
    listed = results.get("pareto")
    if listed is None:
        listed = pareto_front((key, t["accuracy"], t["flops"]) for key, t in candidates.items())
    unknown = [str(key) for key in listed if str(key) not in candidates]
    chosen = [candidates[str(key)] for key in listed if str(key) in candidates]
    return sorted(chosen, key=lambda t: (t["flops"], -t["accuracy"])), unknown


def _final_point(results: Mapping[str, Any], space) -> Optional[Tuple[float, float, str]]:
    """(flops, accuracy, label) of the final genome for the accuracy/FLOPs plot, or None.

    FLOPs come from `final["flops"]`, else from a trial with the same genome. The
    accuracy is the final test accuracy, else that trial's search accuracy.
    """
    final = results.get("final")
    if not final or not final.get("genome"):
        return None
    genome = space.genome(final["genome"])
    twin = next((t for t in _plottable(results.get("trials", [])) if space.genome(t["genome"]) == genome), None)
    flops = final["flops"] if final.get("flops") is not None else (twin["flops"] if twin else None)
    if final.get("test_accuracy") is not None:
        accuracy, label = final["test_accuracy"], f"final (test {final['test_accuracy']:.1f}%)"
    else:
        accuracy, label = (twin["accuracy"], f"final (trial {twin['trial_id']})") if twin else (None, "")
    return (flops, accuracy, label) if flops is not None and accuracy is not None else None


# -- formatting ---------------------------------------------------------------
def _number(value: Optional[float], digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _mflops(flops: Optional[float]) -> str:
    return MISSING if flops is None else f"{flops / 1e6:.2f}"


def _ratio(flops: Optional[float], reference: Optional[float]) -> str:
    return MISSING if flops is None or not reference else f"{flops / reference:.3f}"


def _kib(bits: Optional[float]) -> str:
    return MISSING if bits is None else f"{bits / 8 / 1024:.1f}"


def _gene_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _genome_text(space, genome: Mapping[str, Any]) -> str:
    """`[0.5, 2, 1, 1, 1, 0.5]`: the genome's values in the space's gene (paper) order."""
    return "[" + ", ".join(_gene_value(v) for v in space.genome(genome).values()) + "]"


def _cell(value: Any) -> str:
    return _one_line(value).replace("|", "\\|")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


# -- report.md ----------------------------------------------------------------
def _header_lines(results: Mapping[str, Any], space) -> List[str]:
    trials = results.get("trials", [])
    counts = Counter(t.get("status") for t in trials)
    statuses = list(STATUSES) + sorted(str(s) for s in counts if s not in STATUSES)
    options = ", ".join(f"{k}={v}" for k, v in sorted(space.options.items()))
    ceiling = results.get("max_flops")
    return [
        f"# lqsearch report: {results.get('recipe') or 'unnamed run'}",
        "",
        *_table(["Setting", "Value"], [
            ["Recipe", results.get("recipe") or MISSING],
            ["Space", f"{space.name} ({options})"],
            ["Quantizer", results.get("quantizer") or MISSING],
            ["Dataset", results.get("dataset") or MISSING],
            ["Objective", f"{results.get('objective') or 'fitness'} (lambda = {results.get('lambda', MISSING)})"],
            ["FLOPs ceiling (M)", "none" if ceiling is None else _mflops(ceiling)],
            ["Reference FLOPs (M, uniform 1x)", _mflops(results.get("reference_flops"))],
            ["Trials", f"{len(trials)}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in statuses)],
        ] + ([["Stop reason", results["stop_reason"]]] if results.get("stop_reason") else [])),
        "",
        f"Genomes are listed in gene order: {', '.join(space.genes.names)}.",
    ]


def _trial_rows(trials: Sequence[Mapping[str, Any]], space, reference) -> List[list]:
    return [
        [t["trial_id"], t.get("generation", MISSING), _genome_text(space, t["genome"]), _number(t.get("accuracy")),
         _mflops(t.get("flops")), _ratio(t.get("flops"), reference), _kib(t.get("memory_bits")),
         _number(t.get("fitness"))]
        for t in trials
    ]


TRIAL_HEADER = ["Trial", "Generation", "Genome", "Accuracy (%)", "FLOPs (M)", "FLOPs ratio", "Memory (KiB)", "Fitness"]


def _best_lines(results: Mapping[str, Any], space) -> List[str]:
    best = _ranked(results.get("trials", []))[:TOP_K]
    lines = ["", f"## Best genomes (top {TOP_K} by fitness)", ""]
    if not best:
        return lines + ["No completed trial yet."]
    return lines + _table(TRIAL_HEADER, _trial_rows(best, space, results.get("reference_flops")))


def _pareto_lines(results: Mapping[str, Any], space) -> List[str]:
    front, unknown = _pareto_trials(results)
    lines = ["", "## Pareto set (max accuracy, min FLOPs)", ""]
    lines += _table(TRIAL_HEADER, _trial_rows(front, space, results.get("reference_flops"))) if front else [
        "No completed trial yet."]
    if unknown:
        lines += ["", f"Note: `pareto` lists trial ids that are not completed trials: {', '.join(unknown)}."]
    return lines


def _best_within(trials: Sequence[Mapping[str, Any]], flops: Optional[float]) -> Optional[Mapping[str, Any]]:
    """The most accurate completed trial with FLOPs <= `flops` (fewer FLOPs break ties)."""
    if flops is None:
        return None
    fitting = [t for t in _plottable(trials) if t["flops"] <= flops]
    return max(fitting, key=lambda t: (t["accuracy"], -t["flops"]), default=None)


def _baseline_lines(results: Mapping[str, Any], space) -> List[str]:
    baselines = results.get("baselines") or []
    if not baselines:
        return []
    reference, rows = results.get("reference_flops"), []
    for base in baselines:
        match = _best_within(results.get("trials", []), base.get("flops"))
        delta = (_number(match["accuracy"] - base["accuracy"], 2)
                 if match is not None and base.get("accuracy") is not None else MISSING)
        found = (f"{match['trial_id']}: {_number(match['accuracy'])}% at {_mflops(match['flops'])} M"
                 if match is not None else "none")
        genome = _genome_text(space, base["genome"]) if base.get("genome") else MISSING
        rows.append([base.get("label", MISSING), genome, _mflops(base.get("flops")),
                     _ratio(base.get("flops"), reference), _kib(base.get("memory_bits")),
                     _number(base.get("accuracy")), found, delta])
    header = ["Baseline", "Genome", "FLOPs (M)", "FLOPs ratio", "Memory (KiB)", "Accuracy (%)",
              "Best searched trial at <= these FLOPs", "Accuracy gain (points)"]
    return ["", "## Comparison with uniform baselines", ""] + _table(header, rows)


def _final_lines(results: Mapping[str, Any], space) -> List[str]:
    final = results.get("final")
    lines = ["", "## Final model", ""]
    if not final:
        return lines + ["Final retraining: not run yet."]
    lines.append(f"- Test accuracy (top-1): {_number(final.get('test_accuracy'))}" +
                 ("%" if final.get("test_accuracy") is not None else " (not run yet)"))
    if final.get("test_top5") is not None:
        lines.append(f"- Test accuracy (top-5): {_number(final['test_top5'])}%")
    if final.get("genome"):
        lines.append(f"- Genome: `{_genome_text(space, final['genome'])}`")
    if final.get("model_dir"):
        lines.append(f"- Model: [{final['model_dir']}]({final['model_dir']})")
    return lines


def _failure_lines(results: Mapping[str, Any], limit: int = 10) -> List[str]:
    failed = [t for t in results.get("trials", []) if t.get("status") == "FAILED"]
    if not failed:
        return []
    lines = ["", f"## Failed trials ({len(failed)})", ""]
    lines += [f"- {t['trial_id']}: {_one_line(t.get('message') or 'no message')[:200]}" for t in failed[:limit]]
    return lines + ([f"- ... and {len(failed) - limit} more"] if len(failed) > limit else [])


def _plot_lines() -> List[str]:
    titles = {"accuracy_vs_flops": "Accuracy vs FLOPs", "layers": "Channels or groups per layer",
              "fitness": "Best fitness per generation"}
    lines = ["", "## Plots", ""]
    for key, path in PLOT_FILES.items():
        lines += [f"### {titles[key]}", "", f"![{titles[key]}]({path})", ""]
    return lines


def render_markdown(results: Mapping[str, Any], space) -> str:
    """The text of `report.md` for `results` (a `results.json` dict) in `space`."""
    lines = (_header_lines(results, space) + _best_lines(results, space) + _pareto_lines(results, space)
             + _baseline_lines(results, space) + _final_lines(results, space) + _failure_lines(results)
             + _plot_lines())
    return "\n".join(lines).rstrip() + "\n"


# -- plots --------------------------------------------------------------------
def _new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A figure on its own Agg canvas (no pyplot)."""
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure: Figure, path: Path) -> Path:
    """Saves `figure` as PNG to `path` with the atomic writer."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _draw_baselines(axes, baselines: Sequence[Mapping[str, Any]]) -> None:
    """Labelled squares for baselines with an accuracy, labelled vertical lines for FLOPs-only ones."""
    legend = {"accuracy": "uniform baselines", "flops": "uniform baselines (FLOPs only)"}
    for base in (b for b in baselines if b.get("flops") is not None):
        x, label = base["flops"] / 1e6, base.get("label", "baseline")
        kind = "accuracy" if base.get("accuracy") is not None else "flops"
        if kind == "accuracy":
            axes.scatter([x], [base["accuracy"]], marker="s", s=40, color="tab:gray", label=legend.pop(kind, None),
                         zorder=3)
            axes.annotate(label, (x, base["accuracy"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
        else:
            axes.axvline(x, color="tab:gray", linestyle=":", linewidth=1, label=legend.pop(kind, None))
            axes.text(x, 0.02, f" {label}", rotation=90, fontsize=8, va="bottom", transform=axes.get_xaxis_transform())


def plot_accuracy_vs_flops(results: Mapping[str, Any], space) -> Figure:
    """Completed trials, the Pareto front (step line), uniform baselines and the final genome."""
    figure = _new_figure()
    axes = figure.add_subplot()
    trials = _plottable(results.get("trials", []))
    if trials:
        axes.scatter([t["flops"] / 1e6 for t in trials], [t["accuracy"] for t in trials],
                     s=18, alpha=0.6, color="tab:blue", label=f"trials ({len(trials)})")
    front, _ = _pareto_trials(results)
    if front:
        axes.step([t["flops"] / 1e6 for t in front], [t["accuracy"] for t in front], where="post",
                  color="tab:orange", marker="o", markersize=4, label="Pareto front")
    _draw_baselines(axes, results.get("baselines") or [])
    if results.get("max_flops") is not None:
        axes.axvline(results["max_flops"] / 1e6, color="tab:red", linestyle="--", linewidth=1, label="FLOPs ceiling")
    final = _final_point(results, space)
    if final is not None:
        axes.scatter([final[0] / 1e6], [final[1]], marker="*", s=220, color="tab:green",
                     edgecolors="black", zorder=4, label=final[2])
    flops = [t["flops"] for t in trials] + [b["flops"] for b in results.get("baselines") or [] if b.get("flops")]
    if flops and max(flops) / max(min(flops), 1e-12) > 20:
        axes.set_xscale("log")
    if not trials:
        axes.text(0.5, 0.5, "no completed trial yet", ha="center", transform=axes.transAxes)
    axes.set_xlabel("FLOPs (M)")
    axes.set_ylabel("Top-1 accuracy (%)")
    axes.set_title(f"{space.name}: accuracy vs FLOPs")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, loc="best")
    return figure


def _layers_genome(results: Mapping[str, Any]) -> Tuple[Optional[Mapping[str, Any]], str]:
    """The genome shown per layer: the final one when present, else the best-fitness trial."""
    final = results.get("final")
    if final and final.get("genome"):
        return final["genome"], "final genome"
    ranked = _ranked(results.get("trials", []))
    if ranked:
        return ranked[0]["genome"], f"best trial {ranked[0]['trial_id']}"
    return None, "no completed trial yet"


def plot_layers(results: Mapping[str, Any], space) -> Figure:
    """Bars per layer: channels (width genes) or groups (group genes), searched vs uniform 1."""
    genome, label = _layers_genome(results)
    reference = space.layer_table(space.uniform(1))
    names = [name for name, _ in reference]
    groups = all(gene.kind == "groups" for gene in space.genes)
    figure = _new_figure(max(7.0, 0.45 * len(names) + 2), 4.5)
    axes = figure.add_subplot()
    positions = list(range(len(names)))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], [v for _, v in reference], width, color="tab:gray",
             label="uniform 1")
    if genome is not None:
        searched = space.layer_table(genome)
        axes.bar([p + width / 2 for p in positions], [v for _, v in searched], width, color="tab:blue", label=label)
    if groups:
        axes.set_yscale("log", base=2)
        axes.yaxis.set_major_formatter(ScalarFormatter())
        axes.set_ylim(bottom=0.5)
    axes.set_xticks(positions)
    axes.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    axes.set_ylabel("groups" if groups else "output channels")
    axes.set_title(f"{space.name}: {'groups' if groups else 'channels'} per layer ({label} vs uniform 1)")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def plot_fitness(results: Mapping[str, Any]) -> Figure:
    """Every completed trial's fitness per generation (dots) and the best so far (step line)."""
    figure = _new_figure()
    axes = figure.add_subplot()
    trials = _completed(results.get("trials", []))
    if trials:
        axes.scatter([t["generation"] for t in trials], [t["fitness"] for t in trials], s=14, alpha=0.4,
                     color="tab:blue", label="trials")
        curve = best_per_generation(trials)
        axes.step([g for g, _ in curve], [f for _, f in curve], where="post", color="tab:orange", marker="o",
                  markersize=4, label="best so far")
        axes.legend(fontsize=8, loc="best")
    else:
        axes.text(0.5, 0.5, "no completed trial yet", ha="center", transform=axes.transAxes)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("generation")
    axes.set_ylabel(f"fitness (lambda = {results.get('lambda', MISSING)})")
    axes.set_title("Best fitness per generation")
    axes.grid(True, alpha=0.3)
    return figure


# -- entry point --------------------------------------------------------------
def write_report(run_dir: os.PathLike, results: Mapping[str, Any], *, space=None) -> Dict[str, Path]:
    """Writes `report.md` and the plots of a run into `run_dir`, each file atomically.

    Arguments:
        run_dir: the run directory (created if needed).
        results: the run's `results.json`, as a dict.
        space: the run's `lqsearch.spaces.SearchSpace`; rebuilt from `results["space"]` if None.

    Returns:
        `{"report": path, "accuracy_vs_flops": path, "layers": path, "fitness": path}`.

    Raises:
        ValueError: if a genome in `results` is not valid in the space.
    """
    if space is None:
        space = spaces.from_config(results["space"])
    run_dir = Path(run_dir)
    figures = {
        "accuracy_vs_flops": plot_accuracy_vs_flops(results, space),
        "layers": plot_layers(results, space),
        "fitness": plot_fitness(results),
    }
    text = render_markdown(results, space)
    written = {key: _save_png(figure, run_dir / PLOT_FILES[key]) for key, figure in figures.items()}
    report = run_dir / REPORT_FILE
    atomic_write_text(report, text)
    return {"report": report, **written}
