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
- `float`: the full-precision twin of the reference genome (`final.float_twin`).

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
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lqsearch import quantizers, training
from lqsearch.deploy.lce import LatencyCache
from lqsearch.run.final import retrain
from lqsearch.run.progress import EpochProgress, Progress

__all__ = ["StudyEntry", "entries", "train_study", "KINDS", "STUDY_DIR"]

KINDS = ("searched", "uniform", "baseline", "random", "float")
STUDY_DIR = "study"


@dataclasses.dataclass(frozen=True)
class StudyEntry:
    """One row of the table before training: what to train and how it is labelled."""

    label: str
    kind: str
    genome: Dict[str, Any]
    quantizer: str


def _uniform_label(space, value) -> str:
    width = all(gene.kind == "width" for gene in space.genes)
    return f"Uniform-{value:g}x" if width else f"Uniform groups={value:g}"


def entries(space, *, searched: Sequence[Mapping[str, Any]], baselines: Sequence[Any], quantizer: str,
            random_best: Optional[Mapping[str, Any]] = None, float_twin: bool = False) -> List[StudyEntry]:
    """The rows of the study, searched first (the first one is the search's winner).

    Arguments:
        space: the search space.
        searched: trial records of the searched genomes, best fitness first.
        baselines: the recipe's `search.baselines` (uniform values or genomes).
        quantizer: the run's quantizer preset.
        random_best: the best trial record of the random search, if it ran.
        float_twin: add the full-precision twin of the reference genome.
    """
    rows = [StudyEntry("Searched" if rank == 0 else f"Searched #{rank + 1}", "searched",
                       space.genome(record["genome"]), quantizer) for rank, record in enumerate(searched)]
    for value in baselines:
        if isinstance(value, (list, dict)):
            genome = space.genome(value)
            rows.append(StudyEntry("Baseline " + ",".join(f"{v:g}" for v in genome.values()), "baseline", genome,
                                   quantizer))
        else:
            rows.append(StudyEntry(_uniform_label(space, value), "uniform", space.uniform(value), quantizer))
    if random_best is not None:
        rows.append(StudyEntry("Random search", "random", space.genome(random_best["genome"]), quantizer))
    if float_twin:
        rows.append(StudyEntry("Full precision", "float", space.reference_genome(), "float"))
    return rows


def _key(entry: StudyEntry, seed: int, epochs: int) -> str:
    """A folder name for one training: the same genome, quantizer, seed and epochs share it."""
    text = json.dumps({"genome": entry.genome, "quantizer": entry.quantizer, "seed": seed, "epochs": epochs},
                      sort_keys=True)
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
        One dict per row: label, kind, genome, quantizer, flops, memory_bits, binary_macs,
        test_accuracy (one value per seed), test_accuracy_mean, test_accuracy_std (over seeds,
        ddof 1; 0 for one seed), model_dirs, and test_top5 (with more than 10 classes) and
        latency_s (LCE, for LCE-binary presets).
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
            space, entry.genome, dataset, config, quantizer=entry.quantizer, out_dir=out_dir / STUDY_DIR / key,
            verbose=verbose, strategy=strategy, seed=seed,
            callbacks=[EpochProgress(progress, label, later * config.epochs, epoch_seconds)],
            extra={"label": entry.label, "kind": entry.kind},
        )
        progress.say(f"{label}: test top-1 {cards[row, seed].metrics['test_accuracy']:.2f}%")
    latency = _latency_of(space, dataset, rows, out_dir)
    return [_row(entry, [cards[row, seed] for seed in seeds], [_key(entry, seed, config.epochs) for seed in seeds],
                 dataset, latency) for row, entry in enumerate(rows)]


def _finished(out_dir: Path, entry: StudyEntry, seed: int, epochs: int) -> bool:
    card = out_dir / STUDY_DIR / _key(entry, seed, epochs) / "model.json"
    return card.exists() and "test_accuracy" in json.loads(card.read_text()).get("metrics", {})


def _latency_of(space, dataset, rows, out_dir) -> Optional[LatencyCache]:
    binary = {entry.quantizer for entry in rows if quantizers.get(entry.quantizer).lce_binary}
    if len(binary) != 1:
        return None
    return LatencyCache(space, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                        quantizer=binary.pop(), path=out_dir / STUDY_DIR / "latency.json")


def _row(entry: StudyEntry, cards, keys, dataset, latency: Optional[LatencyCache]) -> Dict[str, Any]:
    accuracies = [float(card.metrics["test_accuracy"]) for card in cards]
    metrics = cards[0].metrics
    row = {
        "label": entry.label, "kind": entry.kind, "genome": dict(entry.genome), "quantizer": entry.quantizer,
        "flops": float(metrics["flops"]), "memory_bits": int(metrics["memory_bits"]),
        "binary_macs": int(metrics["binary_macs"]), "test_accuracy": accuracies,
        "test_accuracy_mean": float(np.mean(accuracies)),
        "test_accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
        "model_dirs": [f"{STUDY_DIR}/{key}" for key in keys],
    }
    if dataset.num_classes > training.TOP5_ABOVE_CLASSES:
        row["test_top5"] = [float(card.metrics["test_top5"]) for card in cards]
    if latency is not None and entry.quantizer == latency.quantizer:
        row["latency_s"] = float(latency(entry.genome))
    return row
