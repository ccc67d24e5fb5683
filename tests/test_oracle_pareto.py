"""EvolutionaryOracle with selection="pareto" (NSGA-II parents) and warm starts from trials it did not breed."""
import collections
import json
import random
import shutil

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

from lqsearch.search import operators
from lqsearch.search.oracle import EvolutionaryOracle
from lqsearch.search.selection import non_dominated_ranks
from lqsearch.testing import oracle_problems as problem

COMPLETED = trial_module.TrialStatus.COMPLETED
FAILED = trial_module.TrialStatus.FAILED
RUNNING = trial_module.TrialStatus.RUNNING
OBJECTIVES = [keras_tuner.Objective("accuracy", "max"), keras_tuner.Objective("flops", "min")]
SCHEDULES = ["generational", "steady_state"]


def make_oracle(directory, project="evolution", **kwargs):
    settings = dict(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"), max_trials=60,
        population_size=8, num_parents=4, num_crossovers=4, num_mutations=4, seed=11,
        hyperparameters=problem.synthetic_space(), selection="pareto", objectives=OBJECTIVES,
    )
    settings.update(kwargs)
    oracle = EvolutionaryOracle(**settings)
    oracle._set_project_dir(str(directory), project)
    oracle.verbose = 0
    return oracle


def point(oracle, trial_id):
    metrics = oracle.trials[trial_id].metrics
    return (metrics.get_last_value("accuracy"), metrics.get_last_value("flops"))


def dominates(a, b):
    return a[0] >= b[0] and a[1] <= b[1] and a != b


def assert_no_non_parent_dominates_a_parent(oracle, parents, pool):
    """Parents are never dominated by a trial left out, and no left-out trial has a lower front rank."""
    pool = [t for t in pool if oracle.trials[t].status == COMPLETED]
    ranks = dict(zip(pool, non_dominated_ranks([point(oracle, t) for t in pool], ["max", "min"])))
    others = [t for t in pool if t not in parents]
    for parent in parents:
        for other in others:
            assert not dominates(point(oracle, other), point(oracle, parent)), (parent, other)
    assert max(ranks[p] for p in parents) <= min((ranks[o] for o in others), default=99)


def test_generational_pareto_parents_are_never_dominated_by_a_non_parent(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=40)
    problem.drive_oracle(oracle, problem.synthetic_metrics, 40)
    summaries = oracle.generations()
    assert len(summaries) >= 5
    for summary in summaries[1:]:
        ended_before = oracle.end_order[: summary["began_after_ended"]]
        assert len(summary["parents"]) == 4
        assert_no_non_parent_dominates_a_parent(oracle, summary["parents"], ended_before)
        for trial_id in summary["trials"]:
            assert set(oracle.lineage(trial_id)["parents"]) <= set(summary["parents"])


def test_steady_state_pareto_parents_are_never_dominated_by_a_non_parent(tmp_path):
    oracle = make_oracle(tmp_path, schedule="steady_state", num_crossovers=1, num_mutations=3)
    for _ in range(30):
        problem.drive_oracle(oracle, problem.synthetic_metrics, 1)
        parents = oracle._top_k_ids()
        assert_no_non_parent_dominates_a_parent(oracle, parents, list(oracle.trials))
    bred = [t for t in oracle.trials if oracle.lineage(t)["origin"] in ("crossover", "mutation")]
    assert len(bred) == 30 - 8


def test_a_trial_without_every_objective_fails_with_the_reason(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"fitness": 1.0, "accuracy": 90.0})  # no flops
    trial.status = COMPLETED
    oracle.end_trial(trial)
    assert oracle.trials[trial.trial_id].status == FAILED
    assert "['flops']" in oracle.trials[trial.trial_id].message and "pareto" in oracle.trials[trial.trial_id].message


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_pareto_selection_survives_save_and_reload_mid_search(tmp_path, schedule):
    first_dir, copy_dir = tmp_path / "first", tmp_path / "copy"
    oracle = make_oracle(first_dir, schedule=schedule)
    problem.drive_oracle(oracle, problem.synthetic_metrics, 21)  # mid generation 2
    state = json.loads((first_dir / "evolution" / "oracle.json").read_text())
    assert state["evolution"]["ranking"] == "pareto:accuracy:max,flops:min;P=8;K=4"

    shutil.copytree(first_dir, copy_dir)
    restored = make_oracle(copy_dir, schedule=schedule)
    restored.reload()
    assert restored.get_state()["evolution"] == oracle.get_state()["evolution"]
    assert restored._top_k_ids() == oracle._top_k_ids()
    original = [values for values, _ in problem.drive_oracle(oracle, problem.synthetic_metrics, 19)]
    resumed = [values for values, _ in problem.drive_oracle(restored, problem.synthetic_metrics, 19)]
    assert resumed == original
    assert {t: restored.lineage(t) for t in restored.trials} == {t: oracle.lineage(t) for t in oracle.trials}
    assert restored.generations() == oracle.generations()


# ------------------------------------------------------------------ warm starts


def _scored_genomes(count, seed=5):
    """`count` distinct random genomes of the synthetic space with their metrics."""
    rng = random.Random(seed)
    genomes = {}
    while len(genomes) < count:
        values = operators.random_genome(problem.synthetic_space().space, rng)
        genomes[operators.values_hash(values)] = values
    return [(values, problem.synthetic_metrics(values)) for values in genomes.values()]


@pytest.mark.parametrize("selection", ["fitness", "pareto"])
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_ten_injected_trials_with_p_2_breed_from_the_best_at_once(tmp_path, schedule, selection):
    oracle = make_oracle(tmp_path, schedule=schedule, selection=selection, population_size=2, num_parents=2,
                         num_crossovers=1, num_mutations=1, max_trials=20)
    injected = [oracle.add_trial(values, metrics) for values, metrics in _scored_genomes(10)]
    assert all(oracle.trials[t].status == COMPLETED for t in injected)
    assert {oracle.lineage(t)["origin"] for t in injected} == {"external"}
    labels = [0] * 10 if schedule == "generational" else [i // 2 for i in range(10)]  # steady state: completed // P
    assert [oracle.generation_of(t) for t in injected] == labels
    best = oracle._top_k_ids()
    if selection == "fitness":
        assert best == sorted(injected, key=lambda t: -oracle.trials[t].score)[:2]
    origins = collections.Counter()
    for _ in range(4):
        trial = oracle.create_trial("tuner0")
        assert trial.status == RUNNING
        lineage = oracle.lineage(trial.trial_id)
        origins[lineage["origin"]] += 1
        assert lineage["generation"] >= (1 if schedule == "generational" else 5)
        if trial.trial_id == "10":  # the first new trial: bred from the two best injected ones
            assert set(lineage["parents"]) <= set(best) and lineage["parents"]
        oracle.update_trial(trial.trial_id, problem.synthetic_metrics(trial.hyperparameters.values))
        trial.status = COMPLETED
        oracle.end_trial(trial)
    assert origins["random"] == 0, origins  # no random genome was ever drawn
    if schedule == "generational":
        assert oracle.generations()[0]["closed"] == "complete: 10 trials completed"
        assert oracle.generations()[1]["parents"] == best


def test_add_trial_refuses_bad_values_and_duplicates_and_fails_unscored_ones(tmp_path):
    oracle = make_oracle(tmp_path, selection="fitness")
    (values, metrics), (other, _) = _scored_genomes(2)
    with pytest.raises(ValueError, match="lack 'layer_0'"):
        oracle.add_trial({k: v for k, v in values.items() if k != "layer_0"}, metrics)
    with pytest.raises(ValueError, match="is not a value of"):
        oracle.add_trial({**values, "layer_0": 0.3}, metrics)
    with pytest.raises(ValueError, match="must be a number"):
        oracle.add_trial(values, {**metrics, "fitness": "high"})
    trial_id = oracle.add_trial(values, metrics)
    with pytest.raises(ValueError, match="already tried"):
        oracle.add_trial(values, metrics)
    unscored = oracle.add_trial(other, {"accuracy": 1.0})  # no fitness: a failed trial, with its reason
    assert oracle.trials[trial_id].status == COMPLETED and oracle.trials[unscored].status == FAILED
    assert oracle.trials[unscored].message
    reloaded = make_oracle(tmp_path, selection="fitness")
    reloaded.reload()
    assert reloaded.lineage(trial_id) == {"generation": 0, "origin": "external", "parents": []}


def test_an_earlier_random_search_in_the_project_warm_starts_the_evolution(tmp_path):
    random_search = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective(problem.OBJECTIVE_NAME, "max"), max_trials=10, seed=3,
        hyperparameters=problem.synthetic_space())
    random_search._set_project_dir(str(tmp_path), "evolution")
    random_search.verbose = 0
    problem.drive_oracle(random_search, problem.synthetic_metrics, 10)

    oracle = make_oracle(tmp_path, population_size=4, num_parents=2, num_crossovers=2, num_mutations=2)
    oracle.reload()
    assert {oracle.lineage(t)["origin"] for t in oracle.trials} == {"external"}
    trial = oracle.create_trial("tuner0")
    assert oracle.lineage(trial.trial_id)["origin"] in ("crossover", "mutation")
    assert set(oracle.lineage(trial.trial_id)["parents"]) <= set(oracle._top_k_ids())


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_project_reloaded_with_another_population_and_selection_goes_on(tmp_path, schedule):
    oracle = make_oracle(tmp_path, schedule=schedule, selection="fitness", max_trials=40)
    problem.drive_oracle(oracle, problem.synthetic_metrics, 12)  # generation 1 half done
    reloaded = make_oracle(tmp_path, schedule=schedule, population_size=4, num_parents=2, num_crossovers=2,
                           num_mutations=2, max_trials=40)
    reloaded.reload()
    assert reloaded._top_k_ids() == reloaded._selection.top_k(reloaded.trials, 2, reloaded._trial_index)
    if schedule == "generational":
        current = reloaded.generations()[-1]
        assert current["parents"] == reloaded._top_k_ids()  # ranked again by the new selection
    history = problem.drive_oracle(reloaded, problem.synthetic_metrics, 40)
    assert sum(t.status == COMPLETED for t in reloaded.trials.values()) == 40 and len(history) == 28
    later = [t for t in reloaded.trials if int(t) >= 12]
    assert {reloaded.lineage(t)["origin"] for t in later} <= {"crossover", "mutation"}
