"""Benchmark: EvolutionaryOracle against Keras Tuner's random search.

On the synthetic 17-gene problem of tests/test_oracle.py (12 width ratios,
an Int, a log Float, a Boolean and a conditional Choice; fitness 100 at the
optimum, no training), it counts for each seed how many trials each oracle
needs before one trial reaches 95% of the optimum, capped at --cap trials.
It prints the per-seed counts, the medians and their ratio random/evolution.
A run that never reaches the target counts as the cap, so a ratio computed
with capped runs is a lower bound (marked ">=").

Run (about 1 minute on 2 CPU cores):

    python bench/bench_oracle.py [--seeds 7] [--cap 1000] [--target 0.95]
"""
import argparse
import statistics
import sys
import tempfile
import time

import keras_tuner

from lqsearch.search.oracle import EvolutionaryOracle  # noqa: E402
from lqsearch.testing import oracle_problems as problem  # noqa: E402

SEEDS = [1, 1001, 20011, 300007, 4000037, 50000017, 600000011]


def make_oracle(kind, seed, cap, directory):
    """Builds an oracle of `kind` ("evolution" or "random") on the problem."""
    common = dict(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"),
        max_trials=cap,
        hyperparameters=problem.synthetic_space(),
        seed=seed,
    )
    if kind == "evolution":
        oracle = EvolutionaryOracle(population_size=20, num_parents=10, **common)
    else:
        oracle = keras_tuner.oracles.RandomSearchOracle(**common)
    oracle._set_project_dir(directory, f"{kind}_{seed}")  # pylint: disable=protected-access
    oracle.verbose = 0
    return oracle


def trials_to_target(kind, seed, cap, target, directory):
    """Returns the 1-based trial count at which fitness >= target, or None."""
    oracle = make_oracle(kind, seed, cap, directory)
    history = problem.drive_oracle(
        oracle, problem.synthetic_fitness, cap, stop_when=lambda f: f >= target
    )
    for count, (_, fitness) in enumerate(history, start=1):
        if fitness >= target:
            return count
    return None


def _format(counts, cap):
    return [str(c) if c is not None else f">{cap}" for c in counts]


def main(argv=None):
    """Runs the benchmark and prints its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--cap", type=int, default=1000)
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args(argv)
    target = args.target * problem.OPTIMUM
    seeds = SEEDS[: args.seeds]
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for kind in ("evolution", "random"):
            start = time.time()
            results[kind] = [
                trials_to_target(kind, seed, args.cap, target, directory)
                for seed in seeds
            ]
            print(f"{kind:9s} trials to {args.target:.0%} of optimum per seed: "
                  f"{_format(results[kind], args.cap)} ({time.time() - start:.1f} s)")
    medians = {
        kind: statistics.median(c if c is not None else args.cap for c in counts)
        for kind, counts in results.items()
    }
    censored = any(c is None for c in results["random"])
    print(f"median trials, evolution: {medians['evolution']:g}")
    print(f"median trials, random:    {'>=' if censored else ''}{medians['random']:g}")
    print(f"ratio random/evolution:   {'>=' if censored else ''}"
          f"{medians['random'] / medians['evolution']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
