"""Tests for lqsearch.search.oracle.EvolutionaryOracle (no model is ever trained)."""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

from lqsearch.search import operators
from lqsearch.search.oracle import EvolutionaryOracle
from lqsearch.testing import oracle_problems as problem
from lqsearch.testing.network import free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = [1, 1001, 20011, 300007, 4000037]
COMPLETED = trial_module.TrialStatus.COMPLETED
FAILED = trial_module.TrialStatus.FAILED
STOPPED = trial_module.TrialStatus.STOPPED


SCHEDULES = ["generational", "steady_state"]


def make_oracle(directory, project="evolution", hyperparameters=None, **kwargs):
    """An EvolutionaryOracle on the synthetic space, quiet, with a project dir.

    Unless given, C and M split the population in halves (P = C + M, as the
    generational schedule requires).
    """
    settings = dict(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"),
        max_trials=60,
        population_size=10,
        num_parents=5,
        seed=123,
        hyperparameters=hyperparameters or problem.synthetic_space(),
    )
    settings.update(kwargs)
    population = settings["population_size"]
    settings.setdefault("num_crossovers", population // 2)
    settings.setdefault("num_mutations", population - settings["num_crossovers"])
    oracle = EvolutionaryOracle(**settings)
    oracle._set_project_dir(str(directory), project)
    oracle.verbose = 0
    return oracle


def genomes(history):
    return [values for values, _ in history]


def read_trial_files(project_dir):
    """Returns the states of all trial.json files of a Keras Tuner project."""
    states = []
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as trial_file:
                states.append(json.load(trial_file))
    return states


def assert_exactly_completed_without_duplicates(project_dir, max_trials, context=""):
    states = read_trial_files(project_dir)
    completed = [s for s in states if s["status"] == COMPLETED]
    hashes = [operators.values_hash(s["hyperparameters"]["values"]) for s in completed]
    assert len(completed) == max_trials, ([s["status"] for s in states], context)
    assert len(set(hashes)) == len(hashes), f"a genome was completed twice {context}"


def assert_generations_are_whole(project_dir, schedule, population, crossovers, mutations):
    """Reads oracle.json: every trial has a lineage, and generational generations are whole.

    For "generational", each generation g >= 1 holds C crossover and M
    mutation COMPLETED children (failed ones were replaced) whose parents had
    all ended before g began.
    """
    state = json.loads((project_dir / "oracle.json").read_text())
    statuses = {s["trial_id"]: s["status"] for s in read_trial_files(project_dir)}
    lineage = state["evolution"]["lineage"]
    assert set(lineage) == set(statuses)
    if schedule != "generational":
        return
    records = state["evolution"]["generations"]["records"]
    for generation, record in records.items():
        members = [t for t, birth in lineage.items() if birth["generation"] == int(generation)]
        completed = [t for t in members if statuses[t] == COMPLETED]
        origins = sorted(lineage[t]["origin"] for t in completed)
        ended_before = state["end_order"][: record["began_after_ended"]]
        assert not set(members) & set(ended_before)
        for trial_id in members:
            assert set(lineage[trial_id]["parents"]) <= set(record["parents"]) <= set(ended_before)
        if record["closed"] and int(generation) > 0:
            assert origins == ["crossover"] * crossovers + ["mutation"] * mutations, (generation, origins)
        elif record["closed"]:
            assert origins == ["random"] * population


# --------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"population_size": 0}, "population_size"),
        ({"max_trials": 2.5}, "max_trials"),
        ({"num_parents": 30, "population_size": 20}, "num_parents"),
        ({"num_crossovers": 0, "num_mutations": 0}, "num_mutations"),
        ({"num_parents": 1}, "two parents"),
        ({"population_size": 20, "num_crossovers": 10, "num_mutations": 5},
         r"set num_crossovers \+ num_mutations = population_size \(now 10 \+ 5 != 20\)"),
        ({"schedule": "generation"}, "Did you mean 'generational'"),
        ({"mutation_rate": 1.5}, "mutation_rate"),
        ({"constraint": "flops < 1e9"}, "constraint"),
        ({"max_sampling_attempts": 0}, "max_sampling_attempts"),
        ({"max_consecutive_failed_trials": 0}, "max_consecutive_failed_trials"),
        ({"seed": "one"}, "seed"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_fix(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment) as error:
        EvolutionaryOracle(**kwargs)
    assert "EvolutionaryOracle" in str(error.value)


# ------------------------------------------------- 1. search quality


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["max", "min"])
@pytest.mark.heavy
def test_beats_random_search_on_most_seeds(tmp_path, direction):
    if direction == "max":
        objective_fn = problem.synthetic_fitness
    else:
        def objective_fn(values):
            return problem.OPTIMUM - problem.synthetic_fitness(values)
    pick_best = max if direction == "max" else min
    objective = keras_tuner.Objective(problem.OBJECTIVE_NAME, direction)
    wins = []
    for seed in SEEDS:
        evolution = make_oracle(tmp_path, f"evo_{seed}", objective=objective,
                                max_trials=160, population_size=20, num_parents=10,
                                seed=seed)
        search = keras_tuner.oracles.RandomSearchOracle(
            objective=objective, max_trials=160, seed=seed,
            hyperparameters=problem.synthetic_space(),
        )
        search._set_project_dir(str(tmp_path), f"random_{seed}")
        search.verbose = 0
        evo_best = pick_best(v for _, v in problem.drive_oracle(evolution, objective_fn, 160))
        random_best = pick_best(v for _, v in problem.drive_oracle(search, objective_fn, 160))
        wins.append(evo_best == pick_best(evo_best, random_best) and evo_best != random_best)
        assert evolution.get_best_trials(1)[0].score == pytest.approx(evo_best)
    assert sum(wins) >= 4, wins


# ---------------------------------- 2. duplicates, plain values, state


def test_no_duplicates_plain_values_and_resumed_state_continues_same_stream(tmp_path):
    first_dir, copy_dir = tmp_path / "first", tmp_path / "copy"
    oracle = make_oracle(first_dir, max_trials=80)
    history = problem.drive_oracle(oracle, problem.synthetic_fitness, 45)
    hashes = [operators.values_hash(values) for values in genomes(history)]
    assert len(set(hashes)) == len(hashes) == 45
    for values in genomes(history):
        assert all(type(v) in (int, float, bool, str) for v in values.values()), values

    state = oracle.get_state()
    assert json.loads(json.dumps(state)) == state
    assert [oracle.generation_of(t) for t in ("00", "09", "10", "44")] == [0, 0, 1, 4]

    shutil.copytree(first_dir, copy_dir)
    restored = make_oracle(copy_dir, max_trials=80)
    restored.reload()
    assert restored.get_state()["evolution"] == state["evolution"]
    original_next = genomes(problem.drive_oracle(oracle, problem.synthetic_fitness, 15))
    restored_next = genomes(problem.drive_oracle(restored, problem.synthetic_fitness, 15))
    assert restored_next == original_next
    with pytest.raises(ValueError, match="unknown trial id"):
        oracle.generation_of("nope")


# ------------------------------------------------------ 3. seeding


def test_same_seed_same_genomes_and_different_seed_differs(tmp_path):
    runs = {
        (name, seed): genomes(problem.drive_oracle(
            make_oracle(tmp_path, name, seed=seed), problem.synthetic_fitness, 40))
        for name, seed in [("a", 5), ("b", 5), ("c", 6)]
    }
    assert runs[("a", 5)] == runs[("b", 5)]
    assert runs[("a", 5)] != runs[("c", 6)]


# ----------------------------------------------- 4. conditional scopes


def build_conditional_model(hp):
    """A user hypermodel with nested conditional scopes (returns its values)."""
    used = {"model": hp.Choice("model", ["mlp", "cnn"]), "fixed": hp.Fixed("fixed", 3)}
    used["lr"] = hp.Float("lr", 0.0, 1.0, step=0.25)
    with hp.conditional_scope("model", ["mlp"]):
        if used["model"] == "mlp":
            used["units"] = hp.Int("units", 8, 64, step=8)
            used["activation"] = hp.Choice("activation", ["relu", "tanh"])
    with hp.conditional_scope("model", ["cnn"]):
        if used["model"] == "cnn":
            used["filters"] = hp.Int("filters", 4, 256, sampling="log")
            used["batchnorm"] = hp.Boolean("batchnorm")
            with hp.conditional_scope("batchnorm", [True]):
                if used["batchnorm"]:
                    used["momentum"] = hp.Choice("momentum", [0.9, 0.99])
    return used


def conditional_fitness(values):
    score = values["lr"] + (values.get("units", 0) / 64) + math.log2(values.get("filters", 1)) / 8
    return score + (1.0 if values.get("momentum") == 0.99 else 0.0)


def test_conditional_values_are_active_only_and_accepted_by_the_space(tmp_path):
    space = keras_tuner.HyperParameters()
    for model in ("mlp", "cnn"):  # declare every scope, as Keras Tuner's tuner does
        space.values.update({"model": model, "batchnorm": True})
        build_conditional_model(space)
    space.values = {}
    oracle = make_oracle(tmp_path, hyperparameters=space, max_trials=80, population_size=10)
    history = problem.drive_oracle(oracle, conditional_fitness, 80)
    assert len(history) == 80
    seen = set()
    for values in genomes(history):
        hps = oracle.get_space()
        hps.values = dict(values)
        active = {hp.name for hp in hps.space if hps.is_active(hp)}
        assert set(values) == active, values
        assert set(operators.active_hyperparameters(hps.space, values)) == active
        assert build_conditional_model(hps) == values  # the model reads exactly these
        hps.ensure_active_values()
        assert hps.values == values
        seen.add((values["model"], values.get("batchnorm")))
    assert seen == {("mlp", None), ("cnn", True), ("cnn", False)}


# ------------------------------------------ 5. bounded sampling, stops


def make_tuner(tmp_path, oracle, hypermodel=problem.declare_space, **kwargs):
    return problem.SyntheticTuner(
        oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path),
        project_name="tuner_project", overwrite=True, **kwargs,
    )


def test_unsatisfiable_constraint_stops_search_with_message(tmp_path):
    oracle = EvolutionaryOracle(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"), max_trials=5,
        population_size=4, num_parents=2, num_crossovers=2, num_mutations=2, constraint=lambda values: False,
        max_sampling_attempts=200, seed=1,
    )
    tuner = make_tuner(tmp_path, oracle)
    tuner.search(verbose=0)  # must return, not hang
    assert oracle.trials == {}
    assert "no new genome satisfying the constraint after 200 attempts" in oracle.stop_reason
    assert "Relax the constraint" in oracle.stop_reason


def test_exhausted_tiny_space_stops_after_every_genome_ran(tmp_path):
    def tiny_space(hp):
        hp.Choice("x", [1, 2, 3])

    oracle = EvolutionaryOracle(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"), max_trials=10,
        population_size=2, num_parents=2, num_crossovers=1, num_mutations=1, seed=3,
    )
    tuner = make_tuner(tmp_path, oracle, hypermodel=tiny_space,
                       objective_fn=lambda values: float(values["x"]))
    tuner.search(verbose=0)
    completed = [t for t in oracle.trials.values() if t.status == COMPLETED]
    assert sorted(t.hyperparameters.values["x"] for t in completed) == [1, 2, 3]
    assert "search space is exhausted" in oracle.stop_reason


def test_raising_constraint_stops_without_leaking_the_lock(tmp_path):
    def broken_constraint(values):
        raise ZeroDivisionError("flops model broken")

    oracle = make_oracle(tmp_path, constraint=broken_constraint)
    assert oracle.create_trial("tuner0").status == STOPPED
    assert "ZeroDivisionError" in oracle.stop_reason and "fix the constraint" in oracle.stop_reason
    other_thread = threading.Thread(target=oracle.create_trial, args=("tuner1",))
    other_thread.start()
    other_thread.join(timeout=10)
    assert not other_thread.is_alive(), "the oracle lock leaked"


# ---------------------------------------------- 6. failed trials


def test_failed_trials_keep_their_reason_and_search_reaches_max_trials(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=12, population_size=4, num_parents=2)
    tuner = make_tuner(tmp_path, oracle, fail_every=4, nan_every=3)
    tuner.search(verbose=0)
    trials = list(oracle.trials.values())
    failed = [t for t in trials if t.status == FAILED]
    assert sum(t.status == COMPLETED for t in trials) == 12
    assert len(failed) >= 4
    assert any("synthetic failure" in t.message for t in failed)
    assert any("NaN" in t.message for t in failed)
    assert all(t.message for t in failed)
    assert oracle.remaining_trials() == 0


def test_consecutive_failures_stop_the_search_cleanly(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=12, max_consecutive_failed_trials=3)
    tuner = make_tuner(tmp_path, oracle, fail_every=1)
    tuner.search(verbose=0)  # Keras Tuner would raise RuntimeError here
    assert [t.status for t in oracle.trials.values()] == [FAILED] * 3
    assert "3 consecutive trials failed" in oracle.stop_reason
    assert "synthetic failure" in oracle.stop_reason


# --------------------------------------------- 7. kill and resume


def _interrupt_after_trial_file(oracle, oracle_json):
    saved = oracle_json.read_text()
    oracle.create_trial("tuner0")
    oracle_json.write_text(saved)  # oracle.json never learnt about the trial


def _interrupt_during_run(oracle, oracle_json):
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {problem.OBJECTIVE_NAME: 1.0})


def _interrupt_after_end_trial(oracle, oracle_json):
    trial = oracle.create_trial("tuner0")
    saved = oracle_json.read_text()  # lists the trial as ongoing
    oracle.update_trial(trial.trial_id, {problem.OBJECTIVE_NAME: 99.0})
    trial.status = COMPLETED
    oracle.end_trial(trial)
    oracle_json.write_text(saved)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(
    "interrupt",
    [_interrupt_after_trial_file, _interrupt_during_run, _interrupt_after_end_trial],
)
@pytest.mark.heavy
def test_interrupted_at_a_critical_moment_resume_completes_exactly(tmp_path, interrupt, schedule):
    max_trials = 16
    oracle = make_oracle(tmp_path, max_trials=max_trials, population_size=4, num_parents=2, schedule=schedule)
    problem.drive_oracle(oracle, problem.synthetic_fitness, 6)
    interrupt(oracle, tmp_path / "evolution" / "oracle.json")
    completed_before = {t.trial_id: t.score for t in oracle.trials.values()
                        if t.status == COMPLETED}

    resumed = make_oracle(tmp_path, max_trials=max_trials, population_size=4, num_parents=2, schedule=schedule)
    resumed.reload()
    problem.drive_oracle(resumed, problem.synthetic_fitness, 3 * max_trials)
    assert_exactly_completed_without_duplicates(tmp_path / "evolution", max_trials)
    for trial_id, score in completed_before.items():  # finished trials did not re-run
        assert resumed.trials[trial_id].score == score
    assert resumed.create_trial("tuner0").status == STOPPED


def _start_search(directory, log_path, max_trials, extra_env=None, extra_args=()):
    env = dict(os.environ)
    env = {k: v for k, v in env.items() if not k.startswith("KERASTUNER_")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    env.update(extra_env or {})
    command = [sys.executable, "-m", "lqsearch.testing.oracle_problems", "--directory", str(directory),
               "--max-trials", str(max_trials), *extra_args]
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                env=env, cwd=REPO_ROOT)


def _count_trial_files(project_dir):
    return len(read_trial_files(project_dir)) if os.path.isdir(project_dir) else 0


def _wait_for_trials(process, project_dir, count, timeout=90.0):
    deadline = time.monotonic() + timeout
    while _count_trial_files(project_dir) < count:
        assert process.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline, f"no {count} trials after {timeout} s"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("schedule, selection", [(s, "fitness") for s in SCHEDULES] + [("generational", "pareto")])
@pytest.mark.heavy
def test_sigkilled_twice_then_resumed_search_completes_exactly(tmp_path, schedule, selection):
    max_trials = 30
    project_dir = tmp_path / "synthetic"
    log_path = tmp_path / "search.log"
    moments = random.Random()
    delays = []
    processes = []
    try:
        for _ in range(2):
            process = _start_search(tmp_path, log_path, max_trials,
                                    extra_args=["--sleep", "0.08", "--schedule", schedule, "--selection", selection])
            processes.append(process)
            # Two more trial files: one trial ended since start, so the tuner
            # state exists and the restart must be a resume.
            _wait_for_trials(process, project_dir, _count_trial_files(project_dir) + 2)
            delays.append(moments.uniform(0.0, 0.6))
            time.sleep(delays[-1])
            process.kill()
            process.wait(timeout=30)
        final = _start_search(tmp_path, log_path, max_trials,
                              extra_args=["--sleep", "0.08", "--schedule", schedule, "--selection", selection])
        processes.append(final)
        assert final.wait(timeout=150) == 0, log_path.read_text()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    log = log_path.read_text()
    assert log.count("Reloading Tuner") == 2, (delays, log[-3000:])
    assert_exactly_completed_without_duplicates(project_dir, max_trials, f"delays={delays}")
    assert_generations_are_whole(project_dir, schedule, population=8, crossovers=4, mutations=4)


# ---------------------------------------------------- 8. distributed


@pytest.mark.slow
@pytest.mark.parametrize("schedule, selection", [(s, "fitness") for s in SCHEDULES] + [("generational", "pareto")])
@pytest.mark.heavy
def test_distributed_chief_and_two_workers_share_one_search(tmp_path, schedule, selection):
    max_trials = 12
    port = str(free_port())
    processes = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": port}
            processes[tuner_id] = _start_search(
                tmp_path, tmp_path / f"{tuner_id}.log", max_trials, env,
                ["--sleep", "0.25", "--population-size", "4", "--num-parents", "2", "--num-crossovers", "2",
                 "--num-mutations", "2", "--schedule", schedule, "--selection", selection, "--barrier", "2"],
            )
        for tuner_id in ("tuner0", "tuner1", "chief"):
            code = processes[tuner_id].wait(timeout=150)
            assert code == 0, (tmp_path / f"{tuner_id}.log").read_text()[-3000:]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert_exactly_completed_without_duplicates(tmp_path / "synthetic", max_trials)
    assert_generations_are_whole(tmp_path / "synthetic", schedule, population=4, crossovers=2, mutations=2)
    for tuner_id in ("tuner0", "tuner1"):
        ran = (tmp_path / f"ran_{tuner_id}.log").read_text().split()
        assert ran, f"{tuner_id} ran no trial"
