"""The plots of a run, drawn from `results.json` on Agg canvases (no pyplot state is touched).

Search-phase figures (search-val accuracy) and study figures (test accuracy) are never drawn on
one axis: `plot_accuracy_vs_flops` shows the search, `plot_study` the final-trained table.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple

from matplotlib import cm
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from lqsearch.io import atomic_write_bytes
from lqsearch.run import results_view as view

__all__ = ["plot_accuracy_vs_flops", "plot_layers", "plot_fitness", "plot_front_by_generation", "plot_study",
           "save_png", "Figure"]

KIND_COLORS = {"searched": "tab:green", "uniform": "tab:gray", "baseline": "tab:purple", "random": "tab:orange",
               "float": "tab:blue"}


def _new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A figure on its own Agg canvas (no pyplot)."""
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _log_x(axes) -> None:
    """A logarithmic FLOPs axis with plain numbers on the major ticks and none on the minor ones."""
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(NullFormatter())


def save_png(figure: Figure, path: Path) -> Path:
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
    """Search-val accuracy of the completed trials, the Pareto front (step line) and the baselines' FLOPs.

    Only search-phase figures: the final test accuracies are in `plot_study`, never on this axis.
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    trials = view.plottable(results.get("trials", []))
    if trials:
        axes.scatter([t["flops"] / 1e6 for t in trials], [t["accuracy"] for t in trials],
                     s=18, alpha=0.6, color="tab:blue", label=f"trials ({len(trials)})")
    front, _ = view.pareto_trials(results)
    if front:
        axes.step([t["flops"] / 1e6 for t in front], [t["accuracy"] for t in front], where="post",
                  color="tab:orange", marker="o", markersize=4, label="Pareto front")
    _draw_baselines(axes, results.get("baselines") or [])
    if results.get("max_flops") is not None:
        axes.axvline(results["max_flops"] / 1e6, color="tab:red", linestyle="--", linewidth=1, label="FLOPs ceiling")
    flops = [t["flops"] for t in trials] + [b["flops"] for b in results.get("baselines") or [] if b.get("flops")]
    if flops and max(flops) / max(min(flops), 1e-12) > 20:
        _log_x(axes)
    if not trials:
        axes.text(0.5, 0.5, "no completed trial yet", ha="center", transform=axes.transAxes)
    axes.set_xlabel("FLOPs (M)")
    axes.set_ylabel("search-val top-1 (%)")
    axes.set_title(f"{space.name}: search-val accuracy vs FLOPs")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, loc="best")
    return figure


def _layers_genome(results: Mapping[str, Any]) -> Tuple[Optional[Mapping[str, Any]], str]:
    """The genome shown per layer: the final one when present, else the best-fitness trial."""
    final = results.get("final")
    if final and final.get("genome"):
        return final["genome"], "final genome"
    ranked = view.ranked(results.get("trials", []))
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
    """Every completed trial's fitness per generation (dots), the generation's median and the best so far."""
    figure = _new_figure()
    axes = figure.add_subplot()
    trials = view.completed(results.get("trials", []))
    if trials:
        axes.scatter([t["generation"] for t in trials], [t["fitness"] for t in trials], s=14, alpha=0.4,
                     color="tab:blue", label="trials")
        curve = view.best_per_generation(trials)
        axes.step([g for g, _ in curve], [f for _, f in curve], where="post", color="tab:orange", marker="o",
                  markersize=4, label="best so far")
        medians = view.median_per_generation(trials)
        axes.plot([g for g, _ in medians], [m for _, m in medians], color="tab:green", marker="s", markersize=3,
                  linewidth=1, label="median of the generation")
        axes.legend(fontsize=8, loc="best")
    else:
        axes.text(0.5, 0.5, "no completed trial yet", ha="center", transform=axes.transAxes)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("generation")
    axes.set_ylabel(f"fitness (lambda = {results.get('lambda', view.MISSING)})")
    axes.set_title("Fitness per generation: best so far and median")
    axes.grid(True, alpha=0.3)
    return figure


#: How a cost metric is drawn: (axis label, divisor).
_COST_AXES = {"flops": ("FLOPs (M)", 1e6), "memory_bits": ("memory (KiB)", 8 * 1024), "latency_s": ("LCE latency (ms)",
                                                                                                   1e-3)}


def plot_front_by_generation(results: Mapping[str, Any]) -> Figure:
    """The search's front after every generation: one step line per generation, the non-dominated set of the
    trials completed up to it (search-val accuracy against the run's cost objective, FLOPs by default)."""
    figure = _new_figure()
    axes = figure.add_subplot()
    cost = view.cost_of(results)
    label, divisor = _COST_AXES.get(cost, (cost, 1.0))
    curve = view.front_by_generation(results.get("trials", []), cost)
    colors = cm.viridis([i / max(len(curve) - 1, 1) for i in range(len(curve))])
    for (generation, front), color in zip(curve, colors):
        axes.step([t[cost] / divisor for t in front], [t["accuracy"] for t in front], where="post", color=color,
                  marker="o", markersize=3, linewidth=1.5 if generation == curve[-1][0] else 1,
                  label=f"after generation {generation} ({len(front)} points)")
    if curve:
        axes.legend(fontsize=8, loc="best")
        values = [t[cost] for _, front in curve for t in front]
        if max(values) / max(min(values), 1e-12) > 20:
            _log_x(axes)
    else:
        axes.text(0.5, 0.5, "no completed trial yet", ha="center", transform=axes.transAxes)
    axes.set_xlabel(label)
    axes.set_ylabel("search-val top-1 (%)")
    axes.set_title("Search: the front after every generation")
    axes.grid(True, alpha=0.3)
    return figure


def plot_study(results: Mapping[str, Any]) -> Figure:
    """Test top-1 (mean, with the standard deviation over seeds) against FLOPs, one point per study row."""
    figure = _new_figure()
    axes = figure.add_subplot()
    rows = results.get("study") or []
    for row in rows:
        axes.errorbar([row["flops"] / 1e6], [row["test_accuracy_mean"]], yerr=[row["test_accuracy_std"]],
                      fmt="*" if row["kind"] == "searched" else "o", markersize=12 if row["kind"] == "searched" else 6,
                      color=KIND_COLORS.get(row["kind"], "black"), capsize=3)
        axes.annotate(row["label"], (row["flops"] / 1e6, row["test_accuracy_mean"]), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)
    if not rows:
        axes.text(0.5, 0.5, "the study has not run yet", ha="center", transform=axes.transAxes)
    elif max(r["flops"] for r in rows) / max(min(r["flops"] for r in rows), 1e-12) > 20:
        _log_x(axes)
    seeds = len(rows[0]["test_accuracy"]) if rows else 0
    axes.set_xlabel("FLOPs (M)")
    axes.set_ylabel(f"test top-1 (%), mean ± std over {seeds} seed{'s' if seeds != 1 else ''}")
    axes.set_title("Study: final-trained architectures on the test set")
    axes.grid(True, alpha=0.3)
    return figure
