"""Synthetic search problem and subprocess entry point for the oracle tests.

Importable helpers (used by tests/test_oracle.py, bench/bench_oracle.py and
bench/bench_front.py): `declare_space`, `synthetic_fitness`, `synthetic_flops`
and `synthetic_metrics` (a second, cost objective for Pareto searches),
`drive_oracle`, `SyntheticTuner`.

Run as a script, it is one Keras Tuner process of a search on the synthetic
problem (no training), so tests can SIGKILL and restart it, or start a chief
and workers with Keras Tuner's KERASTUNER_* environment variables:

    python -m lqsearch.testing.oracle_problems --directory DIR --max-trials 30 --sleep 0.1
"""
import argparse
import math
import os
import sys
import time

import keras_tuner
from keras_tuner.engine import trial as trial_module

from lqsearch.search.oracle import EvolutionaryOracle

NUM_LAYERS = 12
RATIOS = [0.25, 0.5, 1.0, 2.0, 3.0, 4.0]
# Res18-Auto-A of Shen et al., used as the optimum of the layer ratios.
TARGET_RATIOS = [2.0, 4.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
TARGET_DEPTH = 11
TARGET_LOG10_LR = -2.0
OPTIMUM = 100.0
# Fitness = OPTIMUM - PENALTY_SCALE * penalty. With 0.4, a random genome
# reaches 95% of the optimum about once in 300 draws.
PENALTY_SCALE = 0.4
OBJECTIVE_NAME = "fitness"


def declare_space(hp):
    """Declares the 17-gene synthetic space on `hp` (usable as a hypermodel).

    12 ratio Choices, an Int, a log Float, a Boolean, a Choice `block` and a
    Choice `bottleneck_ratio` active only when block == "bottleneck".

    Arguments:
        hp: a `keras_tuner.HyperParameters`.

    Returns:
        None (the build function of a hypermodel that builds no model).
    """
    for layer in range(NUM_LAYERS):
        hp.Choice(f"layer_{layer}", RATIOS)
    hp.Int("depth", 1, 16)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Boolean("use_bias")
    hp.Choice("block", ["plain", "bottleneck"])
    with hp.conditional_scope("block", ["bottleneck"]):
        hp.Choice("bottleneck_ratio", [2, 4, 8])


def synthetic_space():
    """Returns a fresh `HyperParameters` holding the synthetic space."""
    hp = keras_tuner.HyperParameters()
    declare_space(hp)
    return hp


def synthetic_penalty(values):
    """Distance of a genome to the optimum (0 at the optimum, >= 0).

    Arguments:
        values: a values dict of the synthetic space.

    Returns:
        A float: squared log2 deviations of the ratios plus terms for the
        other genes.
    """
    penalty = sum(
        (math.log2(values[f"layer_{layer}"]) - math.log2(target)) ** 2
        for layer, target in enumerate(TARGET_RATIOS)
    )
    penalty += ((values["depth"] - TARGET_DEPTH) / 5.0) ** 2
    penalty += (math.log10(values["lr"]) - TARGET_LOG10_LR) ** 2
    penalty += 0.0 if values["use_bias"] else 1.0
    if values["block"] == "bottleneck":
        penalty += abs(math.log2(values["bottleneck_ratio"] / 4))
    else:
        penalty += 1.5
    return penalty


def synthetic_fitness(values):
    """Fitness to maximize, `OPTIMUM` (100) at the optimum genome."""
    return OPTIMUM - PENALTY_SCALE * synthetic_penalty(values)


def synthetic_flops(values):
    """A cost to minimize, in units of the all-1x network: the mean of r[i-1] * r[i] over the layers (r[-1] = 1).

    As a conv layer's FLOPs grow with its input and output widths, the ratios
    that maximize `synthetic_fitness` (mostly 4x) cost about 11x, the
    cheapest genome (all 0.25x) about 0.08x: accuracy and cost conflict.
    """
    ratios = [1.0] + [values[f"layer_{layer}"] for layer in range(NUM_LAYERS)]
    return sum(a * b for a, b in zip(ratios, ratios[1:])) / NUM_LAYERS


#: Lambda of the weighted-sum fitness of `synthetic_metrics`.
SYNTHETIC_LAMBDA = 1.0


def synthetic_metrics(values, lam=SYNTHETIC_LAMBDA):
    """Metrics of a two-objective problem: {"accuracy": max, "flops": min, "fitness": accuracy - lam * flops}."""
    accuracy, flops = synthetic_fitness(values), synthetic_flops(values)
    return {"accuracy": accuracy, "flops": flops, OBJECTIVE_NAME: accuracy - lam * flops}


def drive_oracle(oracle, objective_fn, num_trials, tuner_id="tuner0",
                 stop_when=None):
    """Runs trials directly on an oracle, with no Tuner and no training.

    Arguments:
        oracle: a Keras Tuner oracle whose project dir is set.
        objective_fn: values dict -> objective value, or -> a dict of metrics
            (holding the oracle's objective; e.g. `synthetic_metrics`).
        num_trials: maximum number of `create_trial` calls.
        tuner_id: the tuner id to request trials with.
        stop_when: optional predicate on an objective value; the loop stops
            after the first trial for which it is true.

    Returns:
        The list of (values dict, objective value or metrics dict) in creation
        order; it stops early when the oracle returns a STOPPED trial.
    """
    history = []
    for _ in range(num_trials):
        trial = oracle.create_trial(tuner_id)
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        values = dict(trial.hyperparameters.values)
        value = objective_fn(values)
        oracle.update_trial(trial.trial_id, dict(value) if isinstance(value, dict) else {OBJECTIVE_NAME: value})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        history.append((values, value))
        if stop_when is not None and stop_when(value):
            break
    return history


class SyntheticTuner(keras_tuner.Tuner):
    """A real Keras Tuner `Tuner` whose trials only compute `synthetic_fitness`.

    Arguments:
        sleep_seconds: time each trial pretends to train.
        log_directory: optional directory; each finished run_trial appends its
            trial id to `ran_<tuner_id>.log` there.
        fail_every: optional int n; every n-th run_trial call raises.
        nan_every: optional int n; every n-th run_trial call returns NaN.
        objective_fn: values dict -> fitness, or -> a metrics dict (e.g. `synthetic_metrics`);
            `synthetic_fitness` by default.
        **kwargs: passed to `keras_tuner.Tuner`.
    """

    def __init__(self, sleep_seconds=0.0, log_directory=None, fail_every=None,
                 nan_every=None, objective_fn=synthetic_fitness, **kwargs):
        super().__init__(**kwargs)
        self.objective_fn = objective_fn
        self.sleep_seconds = sleep_seconds
        self.log_directory = log_directory
        self.fail_every = fail_every
        self.nan_every = nan_every
        self.calls = 0

    def run_trial(self, trial, *args, **kwargs):
        self.calls += 1
        time.sleep(self.sleep_seconds)
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError(f"synthetic failure in call {self.calls}")
        fitness = self.objective_fn(trial.hyperparameters.values)
        metrics = dict(fitness) if isinstance(fitness, dict) else {OBJECTIVE_NAME: fitness}
        if self.nan_every and self.calls % self.nan_every == 0:
            metrics[OBJECTIVE_NAME] = math.nan
        if self.log_directory:
            log_path = os.path.join(self.log_directory, f"ran_{self.tuner_id}.log")
            with open(log_path, "a") as log_file:
                log_file.write(f"{trial.trial_id}\n")
        return metrics


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--max-trials", type=int, default=30)
    parser.add_argument("--population-size", type=int, default=8)
    parser.add_argument("--num-parents", type=int, default=4)
    parser.add_argument("--num-crossovers", type=int, default=4)
    parser.add_argument("--num-mutations", type=int, default=4)
    parser.add_argument("--schedule", default="generational", choices=["generational", "steady_state"])
    parser.add_argument("--selection", default="fitness", choices=["fitness", "pareto"],
                        help="pareto: NSGA-II over accuracy (max) and flops (min) of `synthetic_metrics`")
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--barrier", type=int, default=0,
        help="workers wait until this many workers are ready before searching",
    )
    return parser.parse_args(argv)


def wait_for_workers(directory, tuner_id, count, timeout=120.0):
    """Marks this worker ready, then waits until `count` workers are ready.

    Arguments:
        directory: a directory shared by the workers.
        tuner_id: this worker's id.
        count: number of workers to wait for.
        timeout: seconds before giving up (the search then starts anyway).
    """
    with open(os.path.join(directory, f"ready_{tuner_id}"), "w") as marker:
        marker.write("ready\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = [n for n in os.listdir(directory) if n.startswith("ready_")]
        if len(ready) >= count:
            return
        time.sleep(0.05)


def main(argv=None):
    """Runs (or resumes) one search process on the synthetic problem."""
    args = _parse_args(argv)
    oracle = EvolutionaryOracle(
        objective=keras_tuner.Objective(OBJECTIVE_NAME, "max"),
        max_trials=args.max_trials,
        population_size=args.population_size,
        num_parents=args.num_parents,
        num_crossovers=args.num_crossovers,
        num_mutations=args.num_mutations,
        schedule=args.schedule,
        selection=args.selection,
        objectives=["accuracy", "flops"] if args.selection == "pareto" else None,
        seed=args.seed,
    )
    tuner = SyntheticTuner(
        oracle=oracle,
        hypermodel=declare_space,
        sleep_seconds=args.sleep,
        objective_fn=synthetic_metrics if args.selection == "pareto" else synthetic_fitness,
        log_directory=args.directory,
        directory=args.directory,
        project_name="synthetic",
        overwrite=False,
    )
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    if args.barrier and "chief" not in tuner_id:
        wait_for_workers(args.directory, tuner_id, args.barrier)
    tuner.search(verbose=0)
    print(f"search returned; stop_reason={getattr(oracle, 'stop_reason', None)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
