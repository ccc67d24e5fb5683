"""Generational schedule, lineage, barrier back-off and order-aware mutation of EvolutionaryOracle."""
import collections
import json
import random
import shutil
import threading
import time

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

from lqsearch.search import operators
from lqsearch.search.oracle import EvolutionaryOracle
from lqsearch.search.settings import EvolutionSettings
from lqsearch.testing import oracle_problems as problem

COMPLETED = trial_module.TrialStatus.COMPLETED
FAILED = trial_module.TrialStatus.FAILED
IDLE = trial_module.TrialStatus.IDLE
RUNNING = trial_module.TrialStatus.RUNNING


def make_oracle(directory, project="evolution", **kwargs):
    settings = dict(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"), max_trials=60,
        population_size=10, num_parents=4, num_crossovers=4, num_mutations=6, seed=11,
        hyperparameters=problem.synthetic_space(),
    )
    settings.update(kwargs)
    oracle = EvolutionaryOracle(**settings)
    oracle._set_project_dir(str(directory), project)
    oracle.verbose = 0
    return oracle


def finish(oracle, trial, status=COMPLETED, value=None):
    """Reports the synthetic fitness (or `value`) and ends the trial with `status`."""
    fitness = problem.synthetic_fitness(trial.hyperparameters.values) if value is None else value
    oracle.update_trial(trial.trial_id, {problem.OBJECTIVE_NAME: fitness})
    trial.status = status
    oracle.end_trial(trial)


def top_k(oracle, trial_ids, k):
    completed = [t for t in trial_ids if oracle.trials[t].status == COMPLETED]
    return sorted(completed, key=lambda t: (-oracle.trials[t].score, int(t)))[:k]


def run_interleaved(oracle, workers, seed):
    """Drives the oracle with `workers` tuner ids that end their trials in a random order.

    Returns the trial ids each worker was given, in order.
    """
    order = random.Random(seed)
    running = {}
    while True:
        idle = [w for w in range(workers) if w not in running]
        for worker in idle:
            trial = oracle.create_trial(f"tuner{worker}")
            if trial.status == RUNNING:
                running[worker] = trial
            elif trial.status != IDLE:  # STOPPED
                if not running:
                    return
        if not running:
            return
        worker = order.choice(sorted(running))
        finish(oracle, running.pop(worker))


# ------------------------------------------------------------ settings


def test_generational_requires_population_equal_crossovers_plus_mutations():
    with pytest.raises(ValueError, match=r"num_crossovers \+ num_mutations = population_size \(now 10 \+ 5 != 20\)"):
        EvolutionSettings(population_size=20, num_crossovers=10, num_mutations=5)
    with pytest.raises(ValueError, match="^EvolutionaryOracle: .*schedule='steady_state'"):
        EvolutionaryOracle(population_size=20, num_crossovers=10, num_mutations=5)
    assert EvolutionSettings(population_size=20, num_crossovers=10, num_mutations=5, schedule="steady_state")
    assert EvolutionSettings().schedule == "generational"
    assert EvolutionaryOracle().settings.schedule == EvolutionSettings().schedule


# ---------------------------------------------------- generational structure


@pytest.mark.parametrize("workers", [1, 3])
def test_each_generation_holds_exactly_c_crossovers_and_m_mutations_of_earlier_top_k(tmp_path, workers):
    population, crossovers, mutations, parents_k = 7, 2, 5, 3
    oracle = make_oracle(tmp_path, max_trials=28, population_size=population, num_crossovers=crossovers,
                         num_mutations=mutations, num_parents=parents_k)
    run_interleaved(oracle, workers, seed=workers)
    assert sum(t.status == COMPLETED for t in oracle.trials.values()) == 28
    summaries = oracle.generations()
    assert [s["generation"] for s in summaries] == [0, 1, 2, 3]
    for summary in summaries:
        members = summary["trials"]
        origins = collections.Counter(oracle.lineage(t)["origin"] for t in members)
        assert all(oracle.generation_of(t) == summary["generation"] for t in members)
        if summary["generation"] == 0:
            assert origins == {"random": population}
            assert all(oracle.lineage(t)["parents"] == [] for t in members)
            continue
        assert origins == {"crossover": crossovers, "mutation": mutations}, summary
        began = summary["began_after_ended"]
        ended_before = oracle.end_order[:began]
        assert not set(members) & set(ended_before)
        earlier = [t for s in summaries if s["generation"] < summary["generation"] for t in s["trials"]]
        assert sorted(ended_before) == sorted(earlier)  # the barrier: all earlier trials had ended
        assert summary["parents"] == top_k(oracle, ended_before, parents_k)  # top-K of all completed
        for trial_id in members:
            lineage = oracle.lineage(trial_id)
            assert len(lineage["parents"]) == (2 if lineage["origin"] == "crossover" else 1)
            assert set(lineage["parents"]) <= set(summary["parents"])
        assert summaries[summary["generation"] - 1]["closed"].startswith("complete")


def test_failed_children_are_replaced_in_their_generation_and_never_become_parents(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=40, population_size=6, num_crossovers=3, num_mutations=3,
                         num_parents=3)
    first = [oracle.create_trial(f"tuner{i}") for i in range(6)]
    assert [oracle.generation_of(t.trial_id) for t in first] == [0] * 6
    for trial in first[:2]:  # the best objective values ever seen, but failed
        finish(oracle, trial, FAILED, value=1e6)
    for trial in first[2:5]:
        finish(oracle, trial)
    # gen 0 has 3 completed, 1 running, 2 failed: the two failures are replaced in generation 0
    replacements = [oracle.create_trial(f"tuner{i}") for i in range(2)]
    assert [oracle.lineage(t.trial_id) for t in replacements] == [{"generation": 0, "origin": "random",
                                                                   "parents": []}] * 2
    # first[5] and the replacements are running: the barrier holds, and running trials never breed
    assert oracle.create_trial("tuner9").status == IDLE
    assert "waiting for generation 0" in oracle.waiting_reason("tuner9")
    assert "3 trial(s) running" in oracle.waiting_reason("tuner9")
    for trial in replacements + [first[5]]:
        finish(oracle, trial)
    children = [oracle.create_trial(f"tuner{i}") for i in range(6)]
    failed_ids = {t.trial_id for t in first[:2]}
    completed = {t for t, trial in oracle.trials.items() if trial.status == COMPLETED}
    for child in children:
        lineage = oracle.lineage(child.trial_id)
        assert lineage["generation"] == 1
        assert set(lineage["parents"]) <= completed
        assert not set(lineage["parents"]) & failed_ids
    assert oracle.generations()[1]["parents"] == top_k(oracle, sorted(completed), 3)


def test_steady_state_parents_are_completed_never_failed_or_running(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=80, population_size=6, num_crossovers=1, num_mutations=3,
                         num_parents=3, schedule="steady_state")
    problem.drive_oracle(oracle, problem.synthetic_fitness, 6)
    running = oracle.create_trial("slow")
    oracle.update_trial(running.trial_id, {problem.OBJECTIVE_NAME: 1e6})  # best value, still running
    failed = oracle.create_trial("broken")
    finish(oracle, failed, FAILED, value=1e6)
    origins = collections.Counter()
    for _ in range(40):
        child = oracle.create_trial("tuner0")
        lineage = oracle.lineage(child.trial_id)
        origins[lineage["origin"]] += 1
        assert running.trial_id not in lineage["parents"] and failed.trial_id not in lineage["parents"]
        assert all(oracle.trials[p].status == COMPLETED for p in lineage["parents"])
        finish(oracle, child)
    # C and M are relative weights: 1 crossover for 3 mutations
    assert 3 <= origins["crossover"] <= 18 and origins["crossover"] + origins["mutation"] == 40, origins


def test_a_generation_closes_short_after_population_size_failures(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=20, population_size=4, num_crossovers=2, num_mutations=2,
                         num_parents=2, max_consecutive_failed_trials=None)
    for _ in range(3):
        finish(oracle, oracle.create_trial("tuner0"))
    for _ in range(4):  # four failures in generation 0: replaced until the bound (P = 4) is hit
        trial = oracle.create_trial("tuner0")
        assert oracle.generation_of(trial.trial_id) == 0
        finish(oracle, trial, FAILED)
    trial = oracle.create_trial("tuner0")
    assert oracle.generation_of(trial.trial_id) == 1
    closed = oracle.generations()[0]["closed"]
    assert "3 of 4 trials completed after 4 failures" in closed


# ------------------------------------------------------------- lineage


@pytest.mark.parametrize("schedule", ["generational", "steady_state"])
def test_lineage_survives_save_and_reload_and_the_search_continues_identically(tmp_path, schedule):
    first_dir, copy_dir = tmp_path / "first", tmp_path / "copy"
    oracle = make_oracle(first_dir, schedule=schedule)
    problem.drive_oracle(oracle, problem.synthetic_fitness, 17)
    lineages = {t: oracle.lineage(t) for t in oracle.trials}
    assert {lineage["origin"] for lineage in lineages.values()} == {"random", "crossover", "mutation"}
    state = json.loads((first_dir / "evolution" / "oracle.json").read_text())
    assert {t: {k: v for k, v in b.items() if k != "slot"} for t,
            b in state["evolution"]["lineage"].items()} == lineages

    shutil.copytree(first_dir, copy_dir)
    restored = make_oracle(copy_dir, schedule=schedule)
    restored.reload()
    assert {t: restored.lineage(t) for t in restored.trials} == lineages
    assert restored.generations() == oracle.generations()
    problem.drive_oracle(oracle, problem.synthetic_fitness, 8)
    problem.drive_oracle(restored, problem.synthetic_fitness, 8)
    assert {t: restored.lineage(t) for t in restored.trials} == {t: oracle.lineage(t) for t in oracle.trials}
    with pytest.raises(ValueError, match="unknown trial id 'nope'. Pass one of the ids"):
        oracle.lineage("nope")


def test_lineage_reaches_oracle_json_before_the_trial_file(tmp_path, monkeypatch):
    oracle = make_oracle(tmp_path)
    problem.drive_oracle(oracle, problem.synthetic_fitness, 12)
    oracle_json = tmp_path / "evolution" / "oracle.json"
    seen = {}
    save_trial = oracle._save_trial

    def kill_point(trial):  # what oracle.json holds when the trial file is written
        seen.setdefault("state", oracle_json.read_text())
        save_trial(trial)

    monkeypatch.setattr(oracle, "_save_trial", kill_point)
    trial = oracle.create_trial("tuner0")
    oracle_json.write_text(seen["state"])  # killed right after the trial file
    resumed = make_oracle(tmp_path)
    resumed.reload()
    assert resumed.lineage(trial.trial_id) == oracle.lineage(trial.trial_id)
    assert resumed.lineage(trial.trial_id)["origin"] in ("crossover", "mutation")
    assert resumed.create_trial("tuner0").trial_id == trial.trial_id  # re-queued, not lost


# -------------------------------------------------------- barrier back-off


def test_waiting_worker_backs_off_without_holding_the_lock(tmp_path):
    oracle = make_oracle(tmp_path, population_size=4, num_crossovers=2, num_mutations=2, num_parents=2)
    first = [oracle.create_trial(f"tuner{i}") for i in range(4)]
    for trial in first[:3]:
        finish(oracle, trial)
    calls, answers = [], []

    def worker():
        while True:
            calls.append(time.monotonic())
            trial = oracle.create_trial("waiter")
            if trial.status != IDLE:
                answers.append((time.monotonic(), trial))
                return

    thread = threading.Thread(target=worker)
    thread.start()
    latencies = []
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:  # the lock stays free while the worker waits
        start = time.monotonic()
        oracle.update_trial(first[3].trial_id, {problem.OBJECTIVE_NAME: 50.0})
        latencies.append(time.monotonic() - start)
        time.sleep(0.02)
    assert "waiting for generation 0" in oracle.waiting_reason("waiter")
    assert oracle.waiting_reason() == oracle.waiting_reason("waiter")
    assert 3 <= len(calls) <= 8, len(calls)  # back-off, not a busy loop
    assert max(latencies) < 0.3, max(latencies)
    ended_at = time.monotonic()
    finish(oracle, first[3])
    thread.join(timeout=5)
    assert not thread.is_alive()
    woke_at, trial = answers[0]
    assert trial.status == RUNNING and oracle.generation_of(trial.trial_id) == 1
    assert woke_at - ended_at < 0.5  # an ended trial wakes the waiting worker
    assert oracle.waiting_reason("waiter") is None


# ------------------------------------------------------ order-aware mutation


def ladder_space():
    hp = keras_tuner.HyperParameters()
    hp.Choice("ratio", problem.RATIOS, ordered=True)
    hp.Choice("block", ["plain", "bottleneck", "inverted", "fused", "ghost", "shuffle"])
    hp.Int("depth", 1, 16)
    hp.Int("width", 8, 512, step=2, sampling="log")
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Boolean("bias")
    return hp.space


def test_ordered_genes_move_to_neighbours_and_categorical_genes_are_redrawn():
    ratio, block, depth, width, lr, bias = ladder_space()
    rng = random.Random(5)
    ladder = sorted(problem.RATIOS)
    steps = collections.Counter()
    for position, value in enumerate(ladder):
        for _ in range(400):
            child = operators.mutate_value(ratio, value, rng)
            steps[abs(ladder.index(child) - position)] += 1
    uniform_share = sum(len([j for j in (i - 1, i + 1) if 0 <= j < 6]) / 5 for i in range(6)) / 6
    assert steps[0] == 0
    assert steps[1] / sum(steps.values()) > uniform_share + 0.2, (steps, uniform_share)

    redrawn = collections.Counter(operators.mutate_value(block, "fused", rng) for _ in range(2500))
    assert set(redrawn) == {"plain", "bottleneck", "inverted", "ghost", "shuffle"}
    assert max(redrawn.values()) / min(redrawn.values()) < 1.4  # uniform: neighbours are not favoured
    assert {operators.mutate_value(bias, True, rng) for _ in range(20)} == {False}
    assert not operators.is_ordered(block) and not operators.is_ordered(bias)

    depth_moves = [abs(operators.mutate_value(depth, 8, rng) - 8) for _ in range(2000)]
    assert 0 not in depth_moves
    assert sum(move == 1 for move in depth_moves) / len(depth_moves) > 0.3  # uniform redraw: 2/15
    widths = collections.Counter(operators.mutate_value(width, 64, rng) for _ in range(2000))
    assert set(widths) <= {8, 16, 32, 128, 256, 512}  # the log grid, x2 steps
    assert widths[32] + widths[128] > 0.5 * sum(widths.values())
    lrs = [operators.mutate_value(lr, 1e-2, rng) for _ in range(2000)]
    assert all(1e-4 <= value <= 1e-1 for value in lrs)
    within_twice = sum(0.5e-2 < value < 2e-2 for value in lrs) / len(lrs)
    assert within_twice > 0.3, within_twice  # local in log scale; a log-uniform redraw gives 0.2


def test_mutation_keeps_conditional_scopes_consistent():
    hp = keras_tuner.HyperParameters()
    problem.declare_space(hp)
    rng = random.Random(3)
    parent = operators.random_genome(hp.space, rng)
    for _ in range(300):
        child = operators.mutant_child(hp.space, parent, rng, mutation_rate=0.3)
        assert ("bottleneck_ratio" in child) == (child["block"] == "bottleneck"), child
        assert set(operators.active_hyperparameters(hp.space, child)) == set(child)
        assert child != parent
        parent = child
