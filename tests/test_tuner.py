"""The search tuner: metrics and fitness, failed candidates, best models, summary, FLOPs ceiling, TensorBoard."""

import keras_tuner as kt
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import api_pb2, metadata

import lqsearch.spaces
from lqsearch import training
from lqsearch.data import load_dataset
from lqsearch.search.evaluation import EvaluationConfig
from lqsearch.search.selection import ParetoSelection
from lqsearch.search.settings import SearchSettings
from lqsearch.search.tuner import BinaryArchitectureSearch, SearchCallback, SpaceHyperModel, fitness
from lqsearch.spaces.vgg_small import VGGSmallSpace
from lqsearch.testing.tiny_spaces import TinyGroupedSpace

QUICK = EvaluationConfig(epochs=1, training=training.preset("cpu", steps_per_epoch=3))


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("embedded", batch_size=32, train_limit=400, test_limit=100, search_fraction=0.25)


def _tuner(space, dataset, tmp_path, evaluation=QUICK, search_callbacks=(), **settings):
    settings = {**dict(max_trials=4, population_size=2, num_parents=2, num_crossovers=1, num_mutations=1, seed=11),
                **settings}
    return BinaryArchitectureSearch(space, dataset, settings=SearchSettings(**settings), evaluation=evaluation,
                                    search_callbacks=search_callbacks, directory=str(tmp_path), project_name="search",
                                    overwrite=True)


def test_fitness_is_shen_equation_4():
    assert fitness(90.0, 2e6, 1e6, 4.0) == pytest.approx(82.0)
    assert fitness(5.0, 4e6, 1e6, 4.0) == 0.0  # clipped at 0
    assert fitness(71.5, 9e9, 1e6, None) == 71.5  # accuracy only (Phan et al.)


@pytest.mark.slow
@pytest.mark.heavy
def test_search_reports_metrics_and_best_models(dataset, tmp_path, capsys):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    tuner = _tuner(space, dataset, tmp_path, keep_candidates=1)
    tuner.search(verbose=0)
    records = tuner.trial_records()
    completed = [r for r in records if r["status"] == "COMPLETED"]
    assert len(completed) == 4
    genomes = [tuple(r["genome"].values()) for r in completed]
    assert len(set(genomes)) == 4  # never the same genome twice
    for record in completed:
        expected_cost = tuner.cost_of(record["genome"])
        assert record["flops"] == pytest.approx(expected_cost.flops)
        assert record["binary_macs"] == expected_cost.binary_macs
        assert 0 <= record["accuracy"] <= 100
        assert record["fitness"] == pytest.approx(fitness(record["accuracy"], record["flops"], tuner.reference_flops,
                                                          4.0))
        assert record["duration_s"] > 0
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best_record = max(completed, key=lambda r: r["fitness"])
    assert space.genes.from_hyperparameters(best_hp) == best_record["genome"]
    best_model = tuner.get_best_models(1)[0]
    x, _ = next(iter(dataset.search_val))
    assert best_model.predict(x, verbose=0).shape == (x.shape[0], 10)
    tuner.results_summary()
    out = capsys.readouterr().out
    assert "fitness" in out and f"{best_record['fitness']:.2f}" in out


class _FaultySpace(VGGSmallSpace):
    """VGG-small whose conv1=0.25 candidates produce NaN logits and conv1=4 candidates fail to build."""

    name = "faulty_vgg"
    analytic_cost = False  # its faults live in real layers (a Lambda on tensors), which shape tracing cannot run

    def _build(self, genome, inputs, num_classes, preset):
        if genome["conv1"] == 4.0:
            raise ValueError("this candidate cannot be built")
        logits = super()._build(genome, inputs, num_classes, preset)
        if genome["conv1"] == 0.25:
            logits = tf.keras.layers.Lambda(lambda t: t * float("nan"), name="poison")(logits)
        return logits


@pytest.mark.slow
@pytest.mark.heavy
def test_nan_and_unbuildable_candidates_fail_and_the_search_goes_on(dataset, tmp_path):
    space = _FaultySpace(width_multiplier=0.125)
    # A third of this space's genomes fail. A population of 6 allows 6 failures in a row (max(3, population)),
    # and max_trials=8 allows 8 failures in all (the oracle's failure budget is max_trials).
    tuner = _tuner(space, dataset, tmp_path, max_trials=8, population_size=6, num_crossovers=3, num_mutations=3,
                   seed=123)
    tuner.search(verbose=0)
    records = tuner.trial_records()
    failed = [r for r in records if r["status"] == "FAILED"]
    completed = [r for r in records if r["status"] == "COMPLETED"]
    assert len(completed) == 8
    assert all(r["genome"]["conv1"] not in (0.25, 4.0) for r in completed)
    reasons = {r["genome"]["conv1"]: r["message"] for r in failed}
    assert failed, "the seed should propose at least one faulty genome"
    for conv1, message in reasons.items():
        expected = "NaN" if conv1 == 0.25 else "cannot be built"
        assert expected in message


@pytest.mark.slow
@pytest.mark.heavy
def test_flops_ceiling_is_checked_before_any_build_or_training(dataset, tmp_path, monkeypatch):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    tuner = _tuner(space, dataset, tmp_path, lam=None, max_trials=6, population_size=3, num_crossovers=1,
                   num_mutations=2)
    reference = tuner.cost_of(space.uniform(1)).flops
    tuner = _tuner(space, dataset, tmp_path, max_flops=reference, lam=None, max_trials=6, population_size=3,
                   num_crossovers=1, num_mutations=2)
    built, trained = [], []
    real_build, real_fit = space.build, training.fit
    monkeypatch.setattr(space, "build", lambda genome, **kwargs: built.append(space.genome(genome)) or
                        real_build(genome, **kwargs))
    monkeypatch.setattr(training, "fit", lambda model, *args, **kwargs: trained.append(model.count_params()) or
                        real_fit(model, *args, **kwargs))
    tuner.search(verbose=0)
    completed = [r for r in tuner.trial_records() if r["status"] == "COMPLETED"]
    assert len(completed) == 6 and len(trained) == 6 and all(r["fitness"] == r["accuracy"] for r in completed)
    assert [g for g in built if tuner.cost_of(g).flops > reference] == []  # never built, so never trained
    # The oracle refused them before a trial existed: every trial it ever created is under the ceiling.
    for trial in tuner.oracle.trials.values():
        assert tuner.cost_of(space.genes.from_hyperparameters(trial.hyperparameters)).flops <= reference


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["scratch", "inherit"])
@pytest.mark.heavy
def test_best_models_reproduce_the_recorded_accuracy(dataset, tmp_path, mode):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    evaluation = EvaluationConfig(mode=mode, epochs=1, widest_epochs=1,
                                  training=training.preset("cpu", steps_per_epoch=3))
    tuner = _tuner(space, dataset, tmp_path, evaluation=evaluation, max_trials=3, population_size=3,
                   num_crossovers=1, num_mutations=2, keep_candidates=3)
    tuner.search(verbose=0)
    records = {r["trial_id"]: r for r in tuner.trial_records() if r["status"] == "COMPLETED"}
    assert len(records) == 3 and all(1.0 < r["accuracy"] <= 100 for r in records.values())  # percent
    if mode == "inherit":
        assert tuner.preparation["what"] == "trains the widest network"
    for trial, model in zip(tuner.oracle.get_best_trials(3), tuner.get_best_models(3)):
        score = training.evaluate(model, dataset.search_val, num_classes=dataset.num_classes)["accuracy"]
        assert score == pytest.approx(records[trial.trial_id]["accuracy"], abs=1e-6)


def test_unsatisfiable_ceiling_is_refused_with_the_minimum(dataset, tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    with pytest.raises(ValueError, match="below the FLOPs of the cheapest genome .* Raise max_flops to at least"):
        _tuner(space, dataset, tmp_path, max_flops=1.0)


@pytest.mark.slow
def test_a_ceiling_almost_nothing_meets_stops_cleanly(dataset, tmp_path):
    """One valid genome in 46,656: sampling is bounded, so the search stops with a message."""
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    cheapest = lqsearch.cost.profile(space.build(space.cheapest(), input_shape=dataset.input_shape,
                                                 num_classes=10)).flops
    tuner = _tuner(space, dataset, tmp_path, max_flops=cheapest * 1.0001, max_trials=3, max_sampling_attempts=20)
    tuner.search(verbose=0)
    completed = [r for r in tuner.trial_records() if r["status"] == "COMPLETED"]
    assert all(r["genome"] == space.cheapest() for r in completed)
    assert "constraint" in tuner.oracle.stop_reason and "20 attempts" in tuner.oracle.stop_reason


@pytest.mark.slow
@pytest.mark.heavy
def test_space_hypermodel_in_a_plain_keras_tuner(dataset, tmp_path):
    """Users can search an lqsearch space with any Keras Tuner tuner."""
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    hypermodel = SpaceHyperModel(space.bind(input_shape=dataset.input_shape, num_classes=10))
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2, directory=str(tmp_path), seed=3)
    tuner.search(dataset.search_train.take(2), validation_data=dataset.search_val.take(1), epochs=1, verbose=0)
    best = tuner.get_best_hyperparameters(1)[0]
    assert set(space.genes.from_hyperparameters(best)) == set(space.genes.names)


def test_invalid_settings_are_refused(dataset, tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    with pytest.raises(ValueError, match="'lam' is out of range: -1; allowed values are >= 0"):
        _tuner(space, dataset, tmp_path, lam=-1)
    with pytest.raises(ValueError, match="'max_flops' is out of range: 0; allowed values are > 0"):
        _tuner(space, dataset, tmp_path, max_flops=0)
    with pytest.raises(ValueError, match="'mode' must be one of scratch, inherit, oneshot, got 'fast'"):
        EvaluationConfig(mode="fast")
    with pytest.raises(ValueError, match=r"pass them as settings=SearchSettings\(lam=..., max_trials=...\)"):
        BinaryArchitectureSearch(space, dataset, lam=2, max_trials=3, directory=str(tmp_path))


@pytest.mark.slow
@pytest.mark.heavy
def test_latency_aware_fitness(dataset, tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    tuner = _tuner(space, dataset, tmp_path, cost_metric="latency", max_trials=2)
    tuner.search(verbose=0)
    completed = [r for r in tuner.trial_records() if r["status"] == "COMPLETED"]
    assert len(completed) == 2
    reference = tuner.latency_of(space.reference_genome())
    for record in completed:
        assert record["latency_s"] > 0
        assert record["fitness"] == pytest.approx(fitness(record["accuracy"], record["latency_s"], reference, 4.0))
    assert (tmp_path / "search" / "latency.json").exists()
    with pytest.raises(ValueError, match="'cost_metric' must be one of flops, latency"):
        _tuner(space, dataset, tmp_path, cost_metric="energy")


def _dominates(a, b):
    """`a` is at least as accurate at no more FLOPs, and strictly better on one of them."""
    return (a["accuracy"] >= b["accuracy"] and a["flops"] <= b["flops"]
            and (a["accuracy"] > b["accuracy"] or a["flops"] < b["flops"]))


@pytest.mark.slow
def test_pareto_set_is_non_dominated(dataset, tmp_path, monkeypatch):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    tuner = _tuner(space, dataset, tmp_path, max_trials=3, evaluation=EvaluationConfig(epochs=0))
    tuner.search(verbose=0)
    records = tuner.trial_records()
    completed = [r for r in records if r["status"] == "COMPLETED"]
    # A less accurate twin of every trial at the same FLOPs: dominated only through the accuracy tie-break.
    twins = [dict(r, trial_id=f"{r['trial_id']}-worse", accuracy=r["accuracy"] - 1.0) for r in completed]
    monkeypatch.setattr(tuner, "trial_records", lambda: records + twins)
    front = tuner.pareto_set()
    others = completed + twins
    assert front
    for point in front:
        assert not any(_dominates(o, point) for o in others), (point["trial_id"], "is dominated")
    front_ids = {point["trial_id"] for point in front}
    for other in others:
        assert other["trial_id"] in front_ids or any(_dominates(p, other) for p in front), other["trial_id"]


class _Lines(SearchCallback):
    def __init__(self):
        self.lines = []

    def on_prepare_log(self, line):
        self.lines.append(line)


@pytest.mark.slow
def test_supernet_progress_follows_the_search_verbosity(tmp_path, capsys):
    small = load_dataset("embedded", batch_size=16, train_limit=200, test_limit=20, search_fraction=0.3, image_size=16)
    evaluation = EvaluationConfig(mode="oneshot", supernet_steps=4, recalibration_batches=1)
    quiet_lines, loud_lines = _Lines(), _Lines()
    quiet = _tuner(TinyGroupedSpace(), small, tmp_path / "quiet", evaluation=evaluation, lam=None, max_trials=2,
                   search_callbacks=[quiet_lines])
    quiet.search(verbose=0)  # Keras Tuner's quiet search: no supernet lines printed, callbacks still told
    assert "supernet step" not in capsys.readouterr().out
    assert [line.split(":")[0] for line in quiet_lines.lines] == [f"supernet step {s}/4" for s in (1, 2, 3, 4)]
    loud = _tuner(TinyGroupedSpace(), small, tmp_path / "loud", evaluation=evaluation, lam=None,
                  search_callbacks=[loud_lines])
    loud.prepare()  # verbose by default, as Keras Tuner's search
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("supernet step")]
    assert printed == loud_lines.lines and len(printed) == 4
    told = _Lines()  # a run prepares before its quiet search (run.runner): prepare(verbose=0), lines told once
    _tuner(TinyGroupedSpace(), small, tmp_path / "told", evaluation=evaluation, lam=None,
           search_callbacks=[told]).prepare(verbose=0)
    assert "supernet step" not in capsys.readouterr().out and len(told.lines) == 4


@pytest.mark.slow
def test_pareto_search_and_every_trial_in_tensorboard_hparams(tmp_path):
    small = load_dataset("embedded", batch_size=16, train_limit=120, test_limit=20, search_fraction=0.3, image_size=8)
    space = TinyGroupedSpace()
    tuner = _tuner(space, small, tmp_path, evaluation=EvaluationConfig(
        epochs=1, training=training.preset("cpu", steps_per_epoch=1)), max_trials=4, selection="pareto",
        objectives=["accuracy", "memory_bits"])
    tuner.search(verbose=0)
    records = {r["trial_id"]: r for r in tuner.trial_records()}
    first = tuner.oracle.generations()[0]["trials"]
    pareto = ParetoSelection([kt.Objective("accuracy", "max"), kt.Objective("memory_bits", "min")])
    parents = pareto.top_k({t: tuner.oracle.trials[t] for t in first}, 2, int)
    assert tuner.oracle.generations()[1]["parents"] == parents  # bred from the pareto ranking of generation 0
    log_dir = tmp_path / "search" / "tensorboard"
    runs = sorted(p.name for p in log_dir.iterdir() if p.is_dir())
    assert runs == sorted(records) and len(runs) == 4  # one HParams session per trial

    root = event_accumulator.EventAccumulator(str(log_dir))
    root.Reload()
    experiment = metadata.parse_experiment_plugin_data(root.PluginTagToContent(metadata.PLUGIN_NAME)[
        metadata.EXPERIMENT_TAG])
    assert [h.name for h in experiment.hparam_infos] == [gene.name for gene in space.genes]
    assert [m.name.tag for m in experiment.metric_infos] == ["accuracy", "flops", "fitness", "latency_s"]
    for trial_id, record in records.items():
        run = event_accumulator.EventAccumulator(str(log_dir / trial_id))
        run.Reload()
        content = run.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        assert start.group_name == trial_id
        hparams = {name: value.number_value for name, value in start.hparams.items()}
        assert hparams == pytest.approx({name: float(value) for name, value in record["genome"].items()})
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        assert end.status == api_pb2.STATUS_SUCCESS
        for name in ("accuracy", "flops", "fitness"):
            value = tf.make_ndarray(run.Tensors(name)[0].tensor_proto)
            assert float(value) == pytest.approx(record[name], rel=1e-6)
        assert "latency_s" not in run.Tags()["tensors"]  # not measured in this run (cost_metric "flops")


@pytest.mark.slow
def test_only_the_best_candidates_keep_their_weights(dataset, tmp_path):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    tuner = _tuner(space, dataset, tmp_path, max_trials=4, keep_candidates=2)
    tuner.search(verbose=0)
    kept = sorted(path.parent.name for path in (tmp_path / "search").glob("trial_*/candidate"))
    best = sorted(f"trial_{t.trial_id}" for t in tuner.oracle.get_best_trials(2))
    assert kept == best
    assert tuner.get_best_models(1)[0] is not None
    worst = tuner.oracle.get_best_trials(4)[-1]
    with pytest.raises(ValueError, match="keep_candidates=2"):
        tuner.load_model(worst)


def test_by_default_no_candidate_keeps_its_weights_and_the_old_flag_is_refused(dataset, tmp_path):
    assert SearchSettings().keep_candidates == 0
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    with pytest.raises(ValueError, match=r"keep_candidates=N"):
        BinaryArchitectureSearch(space, dataset, save_candidates=True, directory=str(tmp_path), project_name="p")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["oneshot", "scratch"])
def test_keras_session_is_cleared_before_candidates_that_build_a_model_only(tmp_path, monkeypatch, mode):
    """Scratch candidates each build a model (a fresh Keras session first); one-shot candidates run in the
    supernet, and clearing the session would throw its compiled functions away (a one-shot candidate 6x slower)."""
    small = load_dataset("embedded", batch_size=16, train_limit=200, test_limit=20, search_fraction=0.3, image_size=16)
    evaluation = (EvaluationConfig(mode="oneshot", supernet_steps=2, recalibration_batches=1) if mode == "oneshot"
                  else EvaluationConfig(epochs=1, training=training.preset("cpu", steps_per_epoch=1)))
    tuner = _tuner(TinyGroupedSpace(), small, tmp_path, evaluation=evaluation, lam=None, max_trials=3)
    tuner.prepare(verbose=0)
    clear = tf.keras.backend.clear_session
    cleared = []
    monkeypatch.setattr(tf.keras.backend, "clear_session", lambda *a, **k: cleared.append(1) or clear(*a, **k))
    tuner.search(verbose=0)
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(completed) == 3
    assert len(cleared) == (0 if mode == "oneshot" else 3)
    if mode == "oneshot":
        assert tuner.evaluator().supernet._recalibrator.tracing_counts()["accumulate"] == 1
