"""The study stage: the papers' comparison table, every row final-trained under one schedule, several seeds.

Both papers judge a search by one table: the searched architecture against
uniform baselines (Uniform-1x..4x in Shen et al.'s Table 1; uniform groups
1/4/16 in Phan et al.'s Table 1) and a random search (Phan et al.'s "Random
Group"), all trained from scratch under the same final schedule and scored on
the test set. The study builds that table:

- `searched`: the top-`final.top_n` genomes of the search, by search fitness;
- `uniform`: every uniform value of `search.baselines`, and `baseline`: every
  genome given there (e.g. a published one);
- `random`: the best of a random search with the same evaluation, ceiling and
  number of evaluated candidates (`final.random_search`);
- `float`: the full-precision twin of the reference genome (`final.float_twin`);
- iso-cost rows (kind `uniform`), when the FLOPs can be counted (`entries`'
  `input_shape`): in a width space, "Uniform at the searched FLOPs", one width
  multiplier for every layer whose FLOPs match the winner's; in a group space, the
  uniform group counts just at or below and just above the winner's FLOPs.

A Pareto search (`search.selection: pareto`) puts K points of its final front in the
searched rows (`final.front_points`, chosen by `lqsearch.run.front`), labelled
"Front i/K", and EVERY point gets its iso-cost rows, named after it ("Uniform at
Front 2/3's FLOPs").

Every table row carries its FLOPs ratio to the winner (`flops_ratio_to_winner`).
Each row trains `final.seeds` times (seeds search.seed, search.seed + 1, ...).
A training is saved in `study/<row key>/` as soon as it ends, so a run killed at
any epoch resumes without retraining anything that finished (and mid-training
from its last epoch, Keras' BackupAndRestore).

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378 (Tables 1 and 2).
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305 (Tables 1 and 2).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lqsearch import quantizers, training
from lqsearch.deploy.lce import LatencyCache
from lqsearch.run.final import retrain
from lqsearch.run.progress import EpochProgress, Progress
from lqsearch.spaces.base import MAX_WIDTH_MULTIPLIER

__all__ = ["StudyEntry", "entries", "entry_space", "train_study", "KINDS", "STUDY_DIR", "ISO_COST_LABEL",
           "ISO_COST_TOLERANCE"]

KINDS = ("searched", "uniform", "baseline", "random", "float")
STUDY_DIR = "study"
ISO_COST_LABEL = "Uniform at the searched FLOPs"
#: The iso-cost width row's FLOPs are within this fraction of the winner's wherever channel rounding allows it.
ISO_COST_TOLERANCE = 0.02


@dataclasses.dataclass(frozen=True)
class StudyEntry:
    """One row of the table before training: what to train and how it is labelled."""

    label: str
    kind: str
    genome: Dict[str, Any]
    quantizer: str
    #: One width multiplier for every layer, off the genes' grid: the row builds `genome` (every gene at 1)
    #: in the run's space with its `width_multiplier` option times this (see `entry_space`). None: the run's space.
    multiplier: Optional[float] = None


def entry_space(space, entry: StudyEntry):
    """The space that builds `entry`: `space`, or for a `multiplier` row the same space scaled by it."""
    return space if entry.multiplier is None else _scaled(space, entry.multiplier)


def _scaled(space, multiplier: float):
    """`space` with every width times `multiplier` (its `width_multiplier` option scaled)."""
    return type(space)(**dict(space.options, width_multiplier=space.options["width_multiplier"] * multiplier))


def _uniform_label(space, value) -> str:
    width = all(gene.kind == "width" for gene in space.genes)
    return f"Uniform-{value:g}x" if width else f"Uniform groups={value:g}"


def entries(space, *, searched: Sequence[Mapping[str, Any]], baselines: Sequence[Any], quantizer: str,
            random_best: Optional[Mapping[str, Any]] = None, float_twin: bool = False,
            input_shape: Optional[Sequence[int]] = None, num_classes: Optional[int] = None,
            max_flops: Optional[float] = None, front_labels: Optional[Sequence[str]] = None) -> List[StudyEntry]:
    """The rows of the study, searched first (the first one is the search's winner).

    With `input_shape`, iso-cost rows follow the baselines, their FLOPs counted as the search counts them
    (`space.cost`, analytic for every registered space, with the run's quantizer):

    - width spaces (every gene of kind "width"): "Uniform at the searched FLOPs", ONE width multiplier m for
      every layer, found by bisection on the FLOPs. Off-grid values are not genes' values, so the row is
      built honestly as `uniform(1)` of the same space with its `width_multiplier` option times m (every
      layer gets round(base * m * width_multiplier) channels, as `uniform(m)` would if m were allowed);
      `StudyEntry.multiplier` holds m, the shortest decimal giving the same channels. Channel counts are
      integers, so FLOPs move in steps: the row is the closest step, within `ISO_COST_TOLERANCE` (+-2%)
      of the winner's FLOPs wherever the steps allow it (very narrow networks may miss; the table's
      `flops_ratio_to_winner` shows by how much).
    - group spaces: the uniform group counts (`space.uniform(v)` over every gene value v) nearest at or
      below and nearest above the winner's FLOPs, at most `max_flops` when given. A genome already in
      the table (the winner's, or a uniform baseline's) is not added twice.

    Arguments:
        space: the search space.
        searched: trial records of the searched genomes, best fitness first.
        baselines: the recipe's `search.baselines` (uniform values or genomes).
        quantizer: the run's quantizer preset.
        random_best: the best trial record of the random search, if it ran.
        float_twin: add the full-precision twin of the reference genome.
        input_shape: HxWxC the rows are trained on; None leaves out the iso-cost rows.
        num_classes: classifier outputs (default: the space's).
        max_flops: the search's FLOPs ceiling, if any (bounds the group rows).
        front_labels: for a Pareto search, one label per `searched` record (its front points, winner
            first): the searched rows take these labels and each gets its own iso-cost rows, labelled
            after it; a row already in the table (same genome and multiplier) is not added twice.

    Returns:
        The `StudyEntry` list: searched, uniform and baseline rows, iso-cost rows, random search, float twin.
    """
    labels = list(front_labels) if front_labels is not None else [
        "Searched" if rank == 0 else f"Searched #{rank + 1}" for rank in range(len(searched))]
    if len(labels) != len(searched):
        raise ValueError(f"front_labels gives {len(labels)} labels for {len(searched)} searched records; "
                         "give one each.")
    rows = [StudyEntry(label, "searched", space.genome(record["genome"]), quantizer)
            for label, record in zip(labels, searched)]
    for value in baselines:
        if isinstance(value, (list, dict)):
            genome = space.genome(value)
            rows.append(StudyEntry("Baseline " + ",".join(f"{v:g}" for v in genome.values()), "baseline", genome,
                                   quantizer))
        else:
            rows.append(StudyEntry(_uniform_label(space, value), "uniform", space.uniform(value), quantizer))
    if rows and rows[0].kind == "searched" and input_shape is not None:
        arguments = dict(input_shape=tuple(input_shape), num_classes=num_classes or space.default_num_classes,
                         quantizer=quantizer)

        def flops_of(builder, genome) -> float:
            return float(builder.cost(genome, **arguments).flops)

        if front_labels is None:
            rows += _iso_cost_rows(space, rows, flops_of, max_flops)
        else:
            searched_rows = [row for row in rows if row.kind == "searched"]
            for point in sorted(searched_rows, key=lambda row: flops_of(space, row.genome)):  # cheapest first
                rows += _iso_cost_rows(space, rows, flops_of, max_flops, point=point,
                                       where=f"{point.label}'s FLOPs")
    if random_best is not None:
        rows.append(StudyEntry("Random search", "random", space.genome(random_best["genome"]), quantizer))
    if float_twin:
        rows.append(StudyEntry("Full precision", "float", space.reference_genome(), "float"))
    return rows


def _iso_cost_rows(space, rows: Sequence[StudyEntry], flops_of: Callable, max_flops: Optional[float],
                   point: Optional[StudyEntry] = None, where: str = "the searched FLOPs") -> list:
    """The iso-cost rows of `entries` (see there), given the rows so far (the winner first), at the FLOPs of
    `point` (default: the winner), labelled "Uniform at `where`"."""
    point = rows[0] if point is None else point
    winner, quantizer = point.genome, point.quantizer
    target = flops_of(space, winner)
    present = [(row.genome, row.multiplier) for row in rows]
    if all(gene.kind == "width" for gene in space.genes):
        if "width_multiplier" not in space.options or any(1 not in gene.values for gene in space.genes):
            return []
        multiplier = _iso_cost_multiplier(space, target, lambda m: flops_of(_scaled(space, m), space.uniform(1)))
        on_grid = [v for v in next(iter(space.genes)).values if all(v in gene.values for gene in space.genes)
                   and math.isclose(v, multiplier)]
        label = f"Uniform at {where}"
        entry = (StudyEntry(label, "uniform", space.uniform(on_grid[0]), quantizer) if on_grid
                 else StudyEntry(label, "uniform", space.uniform(1), quantizer, multiplier))
        return [] if (entry.genome, entry.multiplier) in present else [entry]
    uniforms: Dict[str, Any] = {}
    for value in sorted({v for gene in space.genes for v in gene.values}):
        genome = space.uniform(value)
        uniforms.setdefault(json.dumps(genome, sort_keys=True), (value, genome))
    scored = [(flops_of(space, genome), value, genome) for value, genome in uniforms.values() if genome != winner]
    scored = [item for item in scored if max_flops is None or item[0] <= max_flops]
    below = max((item for item in scored if item[0] <= target), key=lambda item: item[0], default=None)
    above = min((item for item in scored if item[0] > target), key=lambda item: item[0], default=None)
    added = []
    for item, side in ((below, "nearest at or below"), (above, "nearest above")):
        if item is not None and (item[2], None) not in present:
            added.append(StudyEntry(f"{_uniform_label(space, item[1])} ({side} {where})", "uniform",
                                    item[2], quantizer))
    return added


def _iso_cost_multiplier(space, target: float, flops_at: Callable[[float], float]) -> float:
    """The width multiplier whose FLOPs are closest to `target` (bisection on a log scale), as a short decimal.

    FLOPs grow with the multiplier in steps (channels are integers): the bisection brackets the step
    boundary around `target`, the closer side wins, and the shortest decimal on that step is returned.
    """
    limit = MAX_WIDTH_MULTIPLIER / space.options["width_multiplier"]
    low, high = 1e-3, limit
    if flops_at(low) >= target or flops_at(high) <= target:
        return low if flops_at(low) >= target else limit
    for _ in range(64):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if flops_at(middle) <= target else (low, middle)
    flops = {low: flops_at(low), high: flops_at(high)}
    chosen = min((low, high), key=lambda m: abs(flops[m] / target - 1))
    for digits in range(1, 7):
        scale = 10.0 ** (digits - 1 - math.floor(math.log10(chosen)))
        for candidate in (math.floor(chosen * scale) / scale, math.ceil(chosen * scale) / scale):
            if 0 < candidate <= limit and flops_at(candidate) == flops[chosen]:
                return candidate
    return chosen


def _key(entry: StudyEntry, seed: int, epochs: int) -> str:
    """A folder name for one training: the same genome, quantizer, width multiplier, seed and epochs share it."""
    fields = {"genome": entry.genome, "quantizer": entry.quantizer, "seed": seed, "epochs": epochs}
    if entry.multiplier is not None:  # rows of the run's own space keep their folder names
        fields["multiplier"] = entry.multiplier
    text = json.dumps(fields, sort_keys=True)
    return f"{hashlib.sha256(text.encode()).hexdigest()[:12]}-seed{seed}"


def train_study(rows: Sequence[StudyEntry], *, space, dataset, config, seeds: Sequence[int], out_dir: Path,
                progress: Progress, strategy=None, verbose: int = 0) -> List[Dict[str, Any]]:
    """Final-trains every row over `seeds` and returns the table rows.

    Arguments:
        rows: from `entries`.
        space, dataset: the run's space and dataset (train split for training, test for scoring).
        config: the final `TrainingConfig`.
        seeds: one training per seed and row.
        out_dir: the run directory (trainings are saved under `study/`).
        progress: where epoch lines go.
        strategy, verbose: as for `lqsearch.run.final.retrain`.

    Returns:
        One dict per row: label, kind, genome, quantizer, flops, flops_ratio_to_winner (None without a
        searched row), memory_bits, binary_macs, seeds, test_accuracy (one value per seed, in seed order),
        test_accuracy_mean, test_accuracy_std (over seeds, ddof 1; 0 for one seed), model_dirs, and
        multiplier (iso-cost width rows), test_top5 (with more than 10 classes) and latency_s (LCE, for
        LCE-binary presets).
    """
    jobs = [(row, seed) for row in range(len(rows)) for seed in seeds]
    pending = [job for job in jobs if not _finished(out_dir, rows[job[0]], job[1], config.epochs)]
    epoch_seconds: List[float] = []
    cards = {}
    for index, (row, seed) in enumerate(jobs):
        entry = rows[row]
        key = _key(entry, seed, config.epochs)
        later = len(pending) - pending.index((row, seed)) - 1 if (row, seed) in pending else 0
        label = f"study {index + 1}/{len(jobs)} {entry.label} seed {seed}"
        cards[row, seed] = retrain(
            entry_space(space, entry), entry.genome, dataset, config, quantizer=entry.quantizer,
            out_dir=out_dir / STUDY_DIR / key,
            verbose=verbose, strategy=strategy, seed=seed,
            callbacks=[EpochProgress(progress, label, later * config.epochs, epoch_seconds)],
            extra={"label": entry.label, "kind": entry.kind},
        )
        progress.say(f"{label}: test top-1 {cards[row, seed].metrics['test_accuracy']:.2f}%")
    latency = _latency_of(space, dataset, rows, out_dir)
    table = [_row(entry, seeds, [cards[row, seed] for seed in seeds],
                  [_key(entry, seed, config.epochs) for seed in seeds], dataset, latency)
             for row, entry in enumerate(rows)]
    winner = next((row for row in table if row["kind"] == "searched"), None)
    for row in table:
        row["flops_ratio_to_winner"] = row["flops"] / winner["flops"] if winner is not None else None
    return table


def _finished(out_dir: Path, entry: StudyEntry, seed: int, epochs: int) -> bool:
    card = out_dir / STUDY_DIR / _key(entry, seed, epochs) / "model.json"
    return card.exists() and "test_accuracy" in json.loads(card.read_text()).get("metrics", {})


def _latency_of(space, dataset, rows, out_dir) -> Optional[Callable[[StudyEntry], Optional[float]]]:
    """Measured LCE latency of a row (None for a row of another preset), or None without one LCE-binary preset."""
    binary = {entry.quantizer for entry in rows if quantizers.get(entry.quantizer).lce_binary}
    if len(binary) != 1:
        return None
    quantizer = binary.pop()

    def latency(entry: StudyEntry) -> Optional[float]:
        if entry.quantizer != quantizer:
            return None
        bound = entry_space(space, entry).bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                                               quantizer=quantizer)
        cache = LatencyCache(bound, path=out_dir / STUDY_DIR / "latency.json")
        return float(cache(entry.genome))

    return latency


def _row(entry: StudyEntry, seeds, cards, keys, dataset, latency) -> Dict[str, Any]:
    accuracies = [float(card.metrics["test_accuracy"]) for card in cards]
    metrics = cards[0].metrics
    row = {
        "label": entry.label, "kind": entry.kind, "genome": dict(entry.genome), "quantizer": entry.quantizer,
        "flops": float(metrics["flops"]), "memory_bits": int(metrics["memory_bits"]),
        "binary_macs": int(metrics["binary_macs"]), "seeds": [int(seed) for seed in seeds],
        "test_accuracy": accuracies,
        "test_accuracy_mean": float(np.mean(accuracies)),
        "test_accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
        "model_dirs": [f"{STUDY_DIR}/{key}" for key in keys],
    }
    if dataset.num_classes > training.TOP5_ABOVE_CLASSES:
        row["test_top5"] = [float(card.metrics["test_top5"]) for card in cards]
    if entry.multiplier is not None:
        row["multiplier"] = entry.multiplier
    seconds = latency(entry) if latency is not None else None
    if seconds is not None:
        row["latency_s"] = seconds
    return row
