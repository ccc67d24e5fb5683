"""Benchmark: one search, a whole front. Hypervolume of EvolutionaryOracle's "pareto" selection against
a weighted-sum fitness, random search and Optuna's NSGA-II, on the same budget.

Landscape: the 17-gene synthetic "ratios" problem of bench_oracle.py
(`lqsearch.testing.oracle_problems`), with two objectives: `accuracy`, its
fitness (100 at the optimum, to maximize), and `flops`, the mean of
r[i-1] * r[i] over the 12 width ratios (`synthetic_flops`, to minimize: about
11 at the accuracy optimum, 0.08 for all-0.25x). 160 trials, 5 seeds, medians.

Methods (P=20, K=10, C=10, M=10 for the evolutions, as bench_oracle.py):
- evolution pareto: `EvolutionaryOracle(selection="pareto", objectives=[accuracy max, flops min])`,
  "generational" and "steady_state";
- evolution weighted sum: the same oracle on `fitness = accuracy - 1.0 * flops` (selection "fitness");
- random search (KT): Keras Tuner's RandomSearchOracle;
- NSGA-II (Optuna): `optuna.samplers.NSGAIISampler(population_size=20)` on (accuracy max, flops min),
  driven by ask/tell over the same Keras Tuner space (conditional scopes included).

Hypervolume: the area dominated by ALL the trials of a run, up to the
reference point (accuracy 50, flops 16), divided by the area of the box
[50, 100] x [0, 16] (so 1 would be a genome of accuracy 100 and no cost).
Also reported: the size of the run's final front, and the median ratio of
each method's hypervolume to NSGA-II's on the same seed.

Run (under a minute on 2 shared CPU cores; trial files go to a RAM disk when there is one):

    python bench/bench_front.py [--seeds 5] [--trials 160]

Measured (commit of issue 24, 2 shared CPU cores, 160 trials, 5 seeds, medians):

    method                         hypervolume     min     max vs NSGA-II  wins  front
    evolution pareto generational       0.8408  0.8064  0.8699      1.042  4/5     21
    evolution pareto steady_state       0.8273  0.7709  0.8444      1.012  3/5     21
    evolution weighted sum              0.8361  0.8057  0.8410      1.042  4/5     18
    random search (KT)                  0.7834  0.7654  0.8044      0.987  1/5     15
    NSGA-II (Optuna)                    0.8031  0.7327  0.8348      1.000  5/5     19

The pareto selection is at least as good as Optuna's NSGA-II (median +4%, 4 seeds of 5). The
weighted sum (lambda 1) comes within 0.005 of it on this landscape, with a smaller final front;
how close it comes depends on lambda, which the pareto selection does not need.
"""
import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import statistics
import sys
import tempfile
import time

import keras_tuner
import optuna
from bench_oracle import SEEDS, suggest

from lqsearch.search.oracle import EvolutionaryOracle
from lqsearch.search.selection import non_dominated_ranks
from lqsearch.testing import oracle_problems as problem

REFERENCE = (50.0, 16.0)  # (accuracy, flops): the worst corner of the hypervolume box
BEST = (100.0, 0.0)
EVOLUTION = dict(population_size=20, num_parents=10, num_crossovers=10, num_mutations=10)
OBJECTIVES = [keras_tuner.Objective("accuracy", "max"), keras_tuner.Objective("flops", "min")]
METHODS = ["evolution pareto generational", "evolution pareto steady_state", "evolution weighted sum",
           "random search (KT)", "NSGA-II (Optuna)"]


def hypervolume(points, reference=REFERENCE, best=BEST):
    """Share of the box [reference, best] dominated by `points` ((accuracy max, flops min) pairs)."""
    inside = sorted((f, a) for a, f in points if a > reference[0] and f < reference[1])
    area, best_accuracy = 0.0, reference[0]
    for index, (flops, accuracy) in enumerate(inside):
        best_accuracy = max(best_accuracy, accuracy)
        next_flops = inside[index + 1][0] if index + 1 < len(inside) else reference[1]
        area += (next_flops - flops) * (best_accuracy - reference[0])
    return area / ((best[0] - reference[0]) * (reference[1] - best[1]))


def run_oracle(method, seed, trials, directory):
    common = dict(objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"), max_trials=trials,
                  hyperparameters=problem.synthetic_space(), seed=seed)
    if method.startswith("evolution pareto"):
        oracle = EvolutionaryOracle(schedule=method.split(" ")[-1], selection="pareto", objectives=OBJECTIVES,
                                    **EVOLUTION, **common)
    elif method == "evolution weighted sum":
        oracle = EvolutionaryOracle(**EVOLUTION, **common)
    else:
        oracle = keras_tuner.oracles.RandomSearchOracle(**common)
    oracle._set_project_dir(directory, f"{method.replace(' ', '_')}_{seed}")
    oracle.verbose = 0
    history = problem.drive_oracle(oracle, problem.synthetic_metrics, trials)
    return [(metrics["accuracy"], metrics["flops"]) for _, metrics in history]


def run_optuna(seed, trials):
    sampler = optuna.samplers.NSGAIISampler(population_size=EVOLUTION["population_size"], seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    space = problem.synthetic_space().space
    points = []
    for _ in range(trials):
        trial = study.ask()
        metrics = problem.synthetic_metrics(suggest(trial, space))
        points.append((metrics["accuracy"], metrics["flops"]))
        study.tell(trial, list(points[-1]))
    return points


def front_size(points):
    return sum(rank == 0 for rank in non_dominated_ranks(points, ["max", "min"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=160)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seeds = SEEDS[: args.seeds]
    volumes, fronts, seconds = {}, {}, {}
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as directory:
        for method in METHODS:
            start = time.time()
            runs = [run_optuna(seed, args.trials) if "Optuna" in method else
                    run_oracle(method, seed, args.trials, directory) for seed in seeds]
            seconds[method] = time.time() - start
            volumes[method] = [hypervolume(points) for points in runs]
            fronts[method] = [front_size(points) for points in runs]
            print(f"  ran {method:30s} {seconds[method]:6.1f} s", file=sys.stderr, flush=True)
    reference = volumes["NSGA-II (Optuna)"]
    print(f"\nratios landscape, accuracy (max) vs flops (min), {args.trials} trials, {len(seeds)} seeds; medians; "
          f"hypervolume up to (accuracy {REFERENCE[0]:g}, flops {REFERENCE[1]:g}) as a share of the box")
    header = (f"{'method':30s} {'hypervolume':>11s} {'min':>7s} {'max':>7s} {'vs NSGA-II':>10s} {'wins':>5s} "
              f"{'front':>6s} {'time':>7s}")
    print(header)
    print("-" * len(header))
    for method in METHODS:
        ratios = [v / r for v, r in zip(volumes[method], reference)]
        wins = sum(v >= r for v, r in zip(volumes[method], reference))
        print(f"{method:30s} {statistics.median(volumes[method]):11.4f} {min(volumes[method]):7.4f} "
              f"{max(volumes[method]):7.4f} {statistics.median(ratios):10.3f} {wins:>2d}/{len(seeds)} "
              f"{statistics.median(fronts[method]):6g} {seconds[method]:6.1f}s")
    print("\nvs NSGA-II: median over seeds of the hypervolume ratio to Optuna's NSGA-II on the same seed; "
          "wins: seeds where it is >= NSGA-II's; front: median size of the final front.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
