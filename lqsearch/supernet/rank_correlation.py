"""Does one-shot accuracy rank candidates like stand-alone training? Kendall's tau on a sample.

`measure_rank_correlation` trains (or reuses) a supernet in `out_dir/supernet`,
then for each sampled genome measures the one-shot accuracy (with and without
BatchNorm recalibration) and the accuracy after E epochs of training from
scratch, both on `search_val`, with their wall-clock costs. It writes
`out_dir/rank_correlation.json` after every genome, and a rerun reuses the
scratch results already there (the expensive part). Re-exported by
`lqsearch.supernet`.

Kendall's tau-b and its p-value come from `scipy.stats.kendalltau`.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from scipy import stats

from lqsearch import cost as cost_lib
from lqsearch import io
from lqsearch.checks import check_choice, check_int
from lqsearch.pixels import float_input
from lqsearch.supernet.recalibration import DEFAULT_RECALIBRATION_BATCHES, accuracy
from lqsearch.supernet.supernet import Supernet
from lqsearch.supernet.training import standalone_optimizer

__all__ = ["measure_rank_correlation", "spread_genomes", "scratch_accuracy", "kendall_tau", "RESULT_NAME"]

RESULT_NAME = "rank_correlation.json"
#: Standard deviation of the per-gene jitter, as a share of the gene's value count.
SPREAD_JITTER = 0.2
MAX_TRIES_PER_GENOME = 50


def _by_cost(gene) -> tuple:
    """The gene's values ordered from the cheapest to the costliest."""
    return tuple(gene.values) if gene.kind == "width" else tuple(reversed(gene.values))


def _jittered(space, fraction: float, rng: np.random.Generator) -> dict:
    """Every gene near `fraction` of its cost-ordered values, with a random jitter."""
    genome = {}
    for gene in space.genes:
        values = _by_cost(gene)
        position = fraction * (len(values) - 1) + rng.normal(0.0, SPREAD_JITTER * (len(values) - 1))
        genome[gene.name] = values[int(np.clip(round(position), 0, len(values) - 1))]
    return space.genome(genome)


def _distinct_jittered(space, count: int, rng: np.random.Generator) -> List[dict]:
    """`count` distinct jittered genomes at evenly spaced fractions (bounded tries)."""
    genomes, seen = [], set()
    for _ in range(count * MAX_TRIES_PER_GENOME):
        if len(genomes) == count:
            break
        genome = _jittered(space, len(genomes) / max(1, count - 1), rng)
        key = json.dumps(genome, sort_keys=True)
        if key not in seen:
            seen.add(key)
            genomes.append(genome)
    if len(genomes) < count:
        raise ValueError(f"Found only {len(genomes)} distinct genomes in space {space.name!r}; ask for fewer.")
    return genomes


def spread_genomes(space, n: int, *, seed: int = 0, cost: Optional[Callable[[dict], float]] = None,
                   pool: int = 4) -> List[dict]:
    """`n` distinct genomes spread from the cheapest to the costliest end of the space.

    Genome `i` of a pool puts every gene near the fraction `i / (size - 1)` of its
    cost-ordered values, with a random jitter. Without `cost`, the pool is the answer;
    with it, a pool of `pool * n` genomes is costed and the `n` genomes nearest to
    log-uniformly spaced costs are kept.

    Arguments:
        space: a `SearchSpace`.
        n: how many genomes (at least 2).
        seed: seed of the jitter.
        cost: genome -> cost (e.g. FLOPs), or None.
        pool: pool size as a multiple of `n` when `cost` is given.

    Returns:
        A list of validated genome dicts, by increasing cost.

    Raises:
        ValueError: if `n < 2` or not enough distinct genomes are found within a bounded number of tries.
    """
    check_int("n", n, minimum=2)
    rng = np.random.default_rng(seed)
    if cost is None:
        return _distinct_jittered(space, n, rng)
    candidates = _distinct_jittered(space, max(n, pool * n), rng)
    costs = np.log([max(float(cost(g)), 1e-12) for g in candidates])
    chosen = []
    for target in np.linspace(costs.min(), costs.max(), n):
        free = [i for i in range(len(candidates)) if i not in chosen]
        chosen.append(min(free, key=lambda i: abs(costs[i] - target)))
    return [candidates[i] for i in sorted(chosen, key=lambda i: costs[i])]


def scratch_accuracy(space, genome: Mapping[str, Any], dataset, *, epochs: int, quantizer: Optional[str] = None,
                     learning_rate: float = 1e-3, max_val_batches: Optional[int] = None, seed: int = 0) -> float:
    """Accuracy on `dataset.search_val` after training `genome` from scratch for `epochs` on `search_train`.

    Adam from `learning_rate` decayed linearly to 0 over the epochs, sparse cross-entropy on logits;
    epoch e's batches are pass e of `dataset.seeded("search_train", seed)`.

    Returns:
        Top-1 accuracy in percent.
    """
    model = space.build(genome, input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer=quantizer)
    seeded = dataset.seeded("search_train", seed)
    trained = float_input(model)  # the passes' uint8 images converted on the device; shares `model`'s weights
    trained.compile(
        optimizer=standalone_optimizer(learning_rate, epochs * seeded.num_batches),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    trained.fit(seeded.passes(0, epochs), epochs=epochs, steps_per_epoch=seeded.num_batches, verbose=0)
    return accuracy(model, dataset.search_val, max_batches=max_val_batches)


def _standalone(trainer, space, genome, dataset, *, epochs, quantizer, learning_rate, max_val_batches, seed) -> float:
    """Stand-alone accuracy through `trainer` (a Supernet) or, when it is None, Keras training of the static model."""
    if trainer is None:
        return scratch_accuracy(space, genome, dataset, epochs=epochs, quantizer=quantizer,
                                learning_rate=learning_rate, max_val_batches=max_val_batches, seed=seed)
    model = trainer.train_standalone(genome, dataset.seeded("search_train", seed), epochs=epochs,
                                     learning_rate=learning_rate)
    return accuracy(model, dataset.search_val, max_batches=max_val_batches)


def _timed(function, *args, **kwargs):
    began = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - began


def _oneshot_pair(supernet, genome, dataset, batches, max_val_batches) -> Dict[str, float]:
    """One-shot accuracies of `genome` with and without BatchNorm recalibration, and their costs."""
    recalibrated, seconds = _timed(
        supernet.evaluate, genome, dataset.search_val, recalibration_data=batches,
        recalibration_batches=len(batches), max_batches=max_val_batches,
    )
    plain, plain_seconds = _timed(
        supernet.evaluate, genome, dataset.search_val, recalibrate=False, max_batches=max_val_batches
    )
    return {
        "oneshot_accuracy": recalibrated,
        "oneshot_seconds": seconds,
        "oneshot_accuracy_no_recalibration": plain,
        "oneshot_seconds_no_recalibration": plain_seconds,
    }


def _previous_scratch(path: Path, settings: Mapping[str, Any]) -> Dict[str, dict]:
    """{genome key: pair} of earlier scratch results obtained with the same `settings`, if any."""
    if not path.exists():
        return {}
    previous = json.loads(path.read_text())
    if any(previous.get(key) != value for key, value in json.loads(json.dumps(settings)).items()):
        return {}
    return {json.dumps(p["genome"], sort_keys=True): p for p in previous.get("pairs", [])}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> Tuple[Optional[float], Optional[float]]:
    """Kendall's tau-b between two paired samples and its two-sided p-value (`scipy.stats.kendalltau`).

    Returns:
        (tau, p-value); (None, None) when either sample is constant (tau is undefined).
    """
    result = stats.kendalltau(x, y, variant="b")
    if not np.isfinite(result.statistic):
        return None, None
    return float(result.statistic), float(result.pvalue)


def _summary(pairs: List[dict]) -> Dict[str, Any]:
    if len(pairs) < 2:
        return {}
    scratch = [p["scratch_accuracy"] for p in pairs]
    oneshot_cost = float(np.mean([p["oneshot_seconds"] for p in pairs]))
    scratch_cost = float(np.mean([p["scratch_seconds"] for p in pairs]))
    tau, p_value = kendall_tau([p["oneshot_accuracy"] for p in pairs], scratch)
    tau_plain, p_value_plain = kendall_tau([p["oneshot_accuracy_no_recalibration"] for p in pairs], scratch)
    return {
        "kendall_tau": tau,
        "kendall_tau_p_value": p_value,
        "kendall_tau_no_recalibration": tau_plain,
        "kendall_tau_no_recalibration_p_value": p_value_plain,
        "recalibration_gain": float(np.mean([p["oneshot_accuracy"] - p["oneshot_accuracy_no_recalibration"]
                                             for p in pairs])),
        "oneshot_seconds_mean": oneshot_cost,
        "scratch_seconds_mean": scratch_cost,
        "cost_ratio": oneshot_cost / scratch_cost,
    }


def measure_rank_correlation(
    space,
    dataset,
    *,
    out_dir,
    genomes: Optional[Sequence[Mapping[str, Any]]] = None,
    n: int = 10,
    epochs_scratch: int = 2,
    supernet_steps: int = 2000,
    quantizer: Optional[str] = None,
    recalibration_batches: int = DEFAULT_RECALIBRATION_BATCHES,
    sandwich: bool = False,
    distill: bool = False,
    seed: int = 0,
    learning_rate: float = 1e-3,
    max_val_batches: Optional[int] = None,
    scratch_trainer: str = "auto",
    supernet=None,
    verbose: int = 0,
) -> Dict[str, Any]:
    """Kendall's tau between one-shot and stand-alone accuracy on a sample of genomes.

    Arguments:
        space: a width and/or group `SearchSpace`.
        dataset: a `lqsearch.data.Dataset`; training uses `search_train`, every accuracy `search_val`.
        out_dir: run directory; gets `supernet/` (checkpoints, reused when trained) and `rank_correlation.json`.
        genomes: the genomes to compare; default `spread_genomes(space, n, seed=seed, cost=FLOPs)`.
        n: the number of genomes when `genomes` is not given.
        epochs_scratch: E, the stand-alone training epochs.
        supernet_steps: supernet training steps (see `Supernet.train`).
        quantizer: preset name; None -> the space's default.
        recalibration_batches: K, the `search_train` batches for BatchNorm recalibration.
        sandwich, distill: supernet training options.
        seed: seed of the supernet's sub-genome sampling and of the genome sample.
        learning_rate: Adam's initial learning rate, decayed linearly to 0, for the supernet
            and for the stand-alone training.
        max_val_batches: evaluate on at most this many `search_val` batches.
        scratch_trainer: how stand-alone candidates train: "static" (Keras `fit` of
            `space.build(genome)`, the scratch mode), "elastic" (the same computation
            through a second supernet pinned to the genome, `Supernet.train_standalone`:
            native grouped convs, much faster on CPU than Keras' XLA grouped convs), or
            "auto" (elastic when the space has group genes).
        supernet: an existing `Supernet` of this space and dataset to train or reuse
            (default: a new one).
        verbose: 1 prints progress.

    Returns:
        The dict written to `out_dir/rank_correlation.json`: the settings, the supernet's
        training stats, `pairs` (genome, FLOPs, accuracies and seconds of each mode), and
        `kendall_tau`, `kendall_tau_no_recalibration`, `recalibration_gain`, `cost_ratio`.
    """
    out_dir = Path(out_dir)
    io.make_dirs(out_dir)
    shape = {"input_shape": dataset.input_shape, "num_classes": dataset.num_classes}
    costs = cost_lib.CostCache(space, quantizer=quantizer or space.default_quantizer, **shape)
    if genomes is None:
        genomes = spread_genomes(space, n, seed=seed, cost=lambda g: costs(g).flops)
    genomes = [space.genome(g) for g in genomes]
    check_choice("scratch_trainer", scratch_trainer, ("auto", "static", "elastic"))
    if scratch_trainer == "auto":
        scratch_trainer = "elastic" if any(g.kind == "groups" for g in space.genes) else "static"
    supernet = supernet or Supernet(space, quantizer=quantizer, **shape)
    trainer = Supernet(space, quantizer=quantizer, **shape) if scratch_trainer == "elastic" else None
    training = supernet.train(dataset.seeded("search_train", seed), steps=supernet_steps,
                              checkpoint_dir=out_dir / "supernet",
                              optimizer=standalone_optimizer(learning_rate, supernet_steps),
                              sandwich=sandwich, distill=distill, seed=seed,
                              log=functools.partial(print, flush=True) if verbose else None)
    batches = dataset.take_batches("search_train", recalibration_batches)
    path = out_dir / RESULT_NAME
    scratch_settings = {
        "space": space.get_config(), "quantizer": supernet.quantizer, "dataset": dataset.name,
        "input_shape": list(dataset.input_shape), "num_search_train": dataset.num_search_train,
        "num_search_val": dataset.num_search_val, "epochs_scratch": epochs_scratch, "learning_rate": learning_rate,
    }
    previous = _previous_scratch(path, scratch_settings)
    result = {
        **scratch_settings, "supernet_steps": supernet_steps, "recalibration_batches": recalibration_batches,
        "sandwich": sandwich, "distill": distill, "seed": seed, "supernet_training": training,
        "scratch_trainer": scratch_trainer, "pairs": [],
    }
    for index, genome in enumerate(genomes):
        pair = {"genome": genome, "flops": costs(genome).flops,
                **_oneshot_pair(supernet, genome, dataset, batches, max_val_batches)}
        earlier = previous.get(json.dumps(genome, sort_keys=True))
        if earlier is not None:
            pair.update(scratch_accuracy=earlier["scratch_accuracy"], scratch_seconds=earlier["scratch_seconds"])
        else:
            accuracy_value, seconds = _timed(
                _standalone, trainer, space, genome, dataset, epochs=epochs_scratch, quantizer=supernet.quantizer,
                learning_rate=learning_rate, max_val_batches=max_val_batches, seed=seed,
            )
            pair.update(scratch_accuracy=accuracy_value, scratch_seconds=seconds)
        result["pairs"].append(pair)
        result.update(_summary(result["pairs"]), complete=index + 1 == len(genomes))
        io.write_json(path, result)
        if verbose:
            print(f"[{index + 1}/{len(genomes)}] flops {pair['flops']:.3g} one-shot {pair['oneshot_accuracy']:.4f} "
                  f"(no recal. {pair['oneshot_accuracy_no_recalibration']:.4f}) scratch {pair['scratch_accuracy']:.4f}")
    return result
