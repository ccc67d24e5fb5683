"""`BinaryArchitectureSearch`: the Keras Tuner `Tuner` that searches an lqsearch space.

One trial: genome -> model -> cost (cached by genome) -> FLOPs ceiling ->
weights (scratch / inherit / oneshot) -> accuracy on the search-val split ->
fitness. It reports one objective, `fitness`, plus `accuracy`, `flops`,
`binary_macs` and `memory_bits` as extra metrics (Keras Tuner would sum a list
of objectives).

    fitness = max(Acc - lambda * FLOPs / FLOPs_ref, 0)

with Acc in percent and FLOPs_ref the cost of the space's unexpanded binary
network (Shen et al., eq. 4). With `lam=None` the fitness is the accuracy alone
and FLOPs act only through the `max_flops` ceiling (Phan et al.). With
`cost_metric="latency"` the measured single-image LCE latency (cached by
genome in `latency.json`) replaces FLOPs in the fitness.

References:
    - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
      ICCV Workshops 2019, arXiv:1909.07378.
    - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
      Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
"""
from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import grpc
import keras_tuner as kt
import tensorflow as tf
from keras_tuner.src.distribute import utils as dist_utils  # Keras Tuner's own chief/worker test

from lqsearch import training
from lqsearch.deploy import artifact
from lqsearch.deploy.lce import LatencyCache
from lqsearch.search import hparams_log
from lqsearch.search.evaluation import EvaluationConfig, make_evaluator
from lqsearch.search.oracle import EvolutionaryOracle
from lqsearch.search.pareto import pareto_front
from lqsearch.search.settings import SearchSettings
from lqsearch.spaces import BoundSpace

__all__ = ["BinaryArchitectureSearch", "SpaceHyperModel", "SearchCallback", "fitness", "budget_constraint"]

METRICS = ("fitness", "accuracy", "flops", "binary_macs", "memory_bits", "latency_s", "duration_s")


def fitness(accuracy: float, flops: float, reference_flops: float, lam: Optional[float]) -> float:
    """Shen et al.'s eq. 4: `max(accuracy - lam * flops / reference_flops, 0)`; the accuracy when `lam` is None."""
    if lam is None:
        return float(accuracy)
    return max(float(accuracy) - lam * flops / reference_flops, 0.0)


class SpaceHyperModel(kt.HyperModel):
    """A Keras Tuner HyperModel over an lqsearch space: one `hp.Choice` per gene.

    Use it in your own Keras Tuner code (any tuner) to search an lqsearch space.

    Arguments:
        space: a `BoundSpace` (`space.bind(input_shape=..., num_classes=..., quantizer=...)`).
    """

    def __init__(self, space: BoundSpace):
        if not isinstance(space, BoundSpace):
            raise ValueError("SpaceHyperModel takes a bound space: pass space.bind(input_shape=..., num_classes=...).")
        super().__init__(name=space.space.name)
        self.space = space

    def declare_hyperparameters(self, hp):
        self.space.genes.declare(hp)

    def build(self, hp):
        model = self.space.build(self.space.genes.declare(hp))
        training.compile_model(model, training.PRESETS["cpu"], 1, self.space.num_classes)
        return model


class SearchCallback:
    """Hooks of `BinaryArchitectureSearch`, for progress output and live results; override what you need.

    Pass instances as `BinaryArchitectureSearch(..., search_callbacks=[...])`. They are
    called in the tuner's process, after the oracle has recorded the trial.
    """

    def on_trial_record(self, record: Dict[str, Any], records: List[Dict[str, Any]]) -> None:
        """A trial ended. `record` is its entry of `trial_records()`; `records` is the whole list."""

    def on_results(self, tuner: BinaryArchitectureSearch) -> None:
        """The results changed (after every trial): a good moment to write them out."""

    def on_prepare_begin(self, what: str) -> None:
        """The one-off preparation starts (`what`: e.g. "trains the supernet"), before the first trial."""

    def on_prepare_log(self, line: str) -> None:
        """A progress line of the preparation (the supernet's step, loss, seconds per step and ETA)."""

    def on_prepare_end(self, preparation: Dict[str, Any]) -> None:
        """The preparation ended: {"what", "seconds", "trained", ...} (see `BinaryArchitectureSearch.prepare`)."""


def budget_constraint(space, cost_of: Callable, max_flops: float) -> Callable[[Dict[str, Any]], bool]:
    """An oracle constraint: the genome's FLOPs are at most `max_flops`."""

    def within_budget(values: Dict[str, Any]) -> bool:
        return cost_of(space.genes.from_hyperparameters(values)).flops <= max_flops

    return within_budget


class BinaryArchitectureSearch(kt.Tuner):
    """Evolutionary search of a binary architecture space (a Keras Tuner `Tuner`).

    Arguments:
        space: an `lqsearch.spaces.SearchSpace` (bound to the dataset's shape and classes, with
            its default quantizer), or a `BoundSpace` from `space.bind(..., quantizer=...)`.
        dataset: an `lqsearch.data.Dataset` (search-train / search-val splits are used).
        settings: a `SearchSettings`: the evolution, the trial budget, the seed and the fitness
            (lambda, cost metric, FLOPs ceiling). Default: `SearchSettings()`.
        evaluation: an `EvaluationConfig` (default: `scratch`, 2 epochs).
        oracle: a Keras Tuner oracle with objective `fitness` (max) to use instead of the default
            `EvolutionaryOracle` built from `settings` (its FLOPs ceiling as the constraint).
        strategy: a `tf.distribute.Strategy` to train each candidate data-parallel
            (default: the current one; see `lqsearch.training.get_strategy`).
        search_callbacks: `SearchCallback`s told of every trial and result change.
        prepare_dir: where the one-off work (widest network, supernet) is saved and found;
            default the project directory. Two searches with the same evaluation (e.g. the
            evolution and its random-search baseline) share it by passing the same folder.
        verbose_training: Keras progress output of candidate training.
        **kwargs: `directory`, `project_name`, `overwrite`, ... as for any `kt.Tuner`.

    Raises:
        ValueError: on invalid settings, or a search setting given as a keyword argument
            (the message shows the `settings=SearchSettings(...)` to write instead).
    """

    def __init__(
        self,
        space,
        dataset,
        *,
        settings: Optional[SearchSettings] = None,
        evaluation: Optional[EvaluationConfig] = None,
        oracle: Optional[kt.Oracle] = None,
        strategy=None,
        search_callbacks: Sequence[SearchCallback] = (),
        prepare_dir: Optional[str] = None,
        verbose_training: int = 0,
        **kwargs,
    ):
        _refuse_search_settings(kwargs)
        if "save_candidates" in kwargs:
            raise ValueError("BinaryArchitectureSearch(save_candidates=...) was replaced by a count: "
                             "settings=SearchSettings(keep_candidates=N) keeps the weights of the N best candidates "
                             "(0, the default, keeps none).")
        self.settings = settings or SearchSettings()
        self.bound = space if isinstance(space, BoundSpace) else space.bind(
            input_shape=dataset.input_shape, num_classes=dataset.num_classes)
        if self.bound.input_shape != tuple(dataset.input_shape) or self.bound.num_classes != dataset.num_classes:
            raise ValueError(f"The space is bound to {self.bound.input_shape} and {self.bound.num_classes} classes but "
                             f"the dataset has {tuple(dataset.input_shape)} and {dataset.num_classes}; bind it to the "
                             "dataset's, or pass the unbound space.")
        self.space = self.bound.space
        self.dataset = dataset
        self.quantizer = self.bound.quantizer
        self.evaluation = evaluation or EvaluationConfig()
        self.verbose_training = verbose_training
        self.strategy = strategy
        self._kept: set = set()  # trial ids whose candidate weights this process saved
        self.search_callbacks = tuple(search_callbacks)
        self._verbose = 1  # Keras Tuner's `search(verbose=1)`; kept from the last `search` call, as its oracle does
        self._prepare_dir = prepare_dir
        self.cost_of = self.bound.cost
        self.reference_flops = self.cost_of(self.space.reference_genome()).flops
        max_flops = self.settings.max_flops
        if max_flops is not None:
            cheapest = self.cost_of(self.space.cheapest()).flops
            if cheapest > max_flops:
                raise ValueError(
                    f"max_flops {max_flops:.4g} is below the FLOPs of the cheapest genome of {self.space.name} "
                    f"({cheapest:.4g}); no candidate can satisfy it. Raise max_flops to at least {cheapest:.4g}."
                )
        if oracle is None:
            oracle = self._default_oracle()
        # Read before Keras Tuner wraps the oracle in a gRPC client (distributed workers).
        self.candidate_seed = int(getattr(oracle, "seed", None) or 0)
        hypermodel = SpaceHyperModel(self.bound)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self._evaluator = None
        self._preparation: Optional[Dict[str, Any]] = None
        self.latency_of = None
        if self.settings.cost_metric == "latency":
            self.latency_of = LatencyCache(self.bound, path=Path(self.project_dir) / "latency.json")

    @property
    def lam(self) -> Optional[float]:
        """Lambda of the fitness (`settings.lam`)."""
        return self.settings.lam

    @property
    def max_flops(self) -> Optional[float]:
        """The FLOPs ceiling (`settings.max_flops`)."""
        return self.settings.max_flops

    def _default_oracle(self) -> EvolutionaryOracle:
        """The `EvolutionaryOracle` on `fitness` from `settings`, with the FLOPs ceiling as its constraint."""
        settings = self.settings
        return EvolutionaryOracle(
            objective=kt.Objective("fitness", "max"), max_trials=settings.trials, seed=settings.seed,
            settings=settings,
            constraint=budget_constraint(self.space, self.cost_of, settings.max_flops) if settings.max_flops else None,
            max_consecutive_failed_trials=max(3, settings.population_size),
        )

    # -- one trial -----------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return Path(self.project_dir)

    def evaluator(self):
        """The candidate evaluator (scratch, inherit or oneshot), created on first use; see `prepare`."""
        if self._evaluator is None:
            self._evaluator = make_evaluator(
                self.bound, self.dataset, self.evaluation,
                run_dir=Path(self._prepare_dir) if self._prepare_dir else self.run_dir,
                verbose=self.verbose_training, strategy=self.strategy, seed=self.candidate_seed, log=self._prepare_log,
            )
        return self._evaluator

    def _prepare_log(self, line: str) -> None:
        """A progress line of the preparation: printed when the search is verbose (Keras Tuner's
        `search(verbose=...)`; 1 before any search, as there), and passed to the search callbacks."""
        if self._verbose:
            print(line, flush=True)
        for callback in self.search_callbacks:
            callback.on_prepare_log(line)

    def prepare(self, verbose: Optional[int] = None) -> Dict[str, Any]:
        """Does the evaluator's one-off work (widest network, supernet) once, before the first trial.

        Keras Tuner's `search` calls it through `on_search_begin` in every process that runs
        trials; in distributed mode the first process trains under a lock in the run
        directory and the others load its result. Callbacks are told when it begins and ends.

        Arguments:
            verbose: print the progress lines (as Keras Tuner's `search(verbose=...)`; default: the
                last search's verbosity, 1 before any). Callbacks get them either way.

        Returns:
            {"what": what was prepared or None, "seconds": this process's time, "trained": whether
            this process did the work}.
        """
        if verbose is not None:
            self._verbose = verbose
        evaluator = self.evaluator()
        if self._preparation is None:
            if evaluator.preparation is not None:
                for callback in self.search_callbacks:
                    callback.on_prepare_begin(evaluator.preparation)
            self._preparation = evaluator.prepare()
            if evaluator.preparation is not None:
                for callback in self.search_callbacks:
                    callback.on_prepare_end(dict(self._preparation))
        return dict(self._preparation)

    @property
    def preparation(self) -> Optional[Dict[str, Any]]:
        """The record of `prepare` once it ran in this process, else None."""
        return None if self._preparation is None else dict(self._preparation)

    def search(self, *fit_args, **fit_kwargs):
        """Keras Tuner's `search`; `verbose=0` also silences the preparation's progress lines.

        A distributed worker that asks for a trial after the chief ended the search (Keras Tuner's
        chief exits once its last trial ends) stops with a message instead of a gRPC traceback."""
        self._verbose = fit_kwargs.get("verbose", self._verbose)
        try:
            return super().search(*fit_args, **fit_kwargs)
        except grpc.RpcError as error:
            worker = dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()
            if not (worker and error.code() == grpc.StatusCode.UNAVAILABLE):
                raise
            address = f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
            print(f"lqsearch: the chief oracle at {address} is gone: it ended the search (every trial done) "
                  "or it stopped; this worker stops too. The results are in the chief's run directory.", flush=True)
            return None

    def on_search_begin(self):
        """Keras Tuner hook: the preparation runs here, so no trial's duration includes it."""
        super().on_search_begin()
        self.prepare()

    def run_trial(self, trial, *args, **kwargs) -> Dict[str, float]:
        """Evaluates one genome; returns the metrics. Failures become failed trials with their reason."""
        start = time.time()
        genome = self.space.genes.from_hyperparameters(trial.hyperparameters)
        try:
            candidate_cost = self.cost_of(genome)
        except Exception as error:  # a genome that does not build is a failed trial, not a crash
            raise kt.errors.FailedTrialError(f"the candidate does not build: {error}") from error
        if self.max_flops is not None and candidate_cost.flops > self.max_flops:
            raise kt.errors.FailedTrialError(
                f"FLOPs {candidate_cost.flops:.4g} exceed max_flops {self.max_flops:.4g}; the candidate was not trained"
            )
        # A fresh Keras session per candidate that builds a model: Keras' global state (layer name counters,
        # graph caches) otherwise grows with every model built. The evaluator's own models (widest network,
        # supernet) live on; one-shot candidates build nothing, and keep the supernet's compiled functions.
        if self.evaluator().builds_models:
            tf.keras.backend.clear_session()
        try:
            self.prepare()
            accuracy, model = self.evaluator().evaluate(genome,
                                                        log_dir=Path(self.get_trial_dir(trial.trial_id)) / "logs")
        except training.CandidateFailed as error:
            raise kt.errors.FailedTrialError(str(error)) from error
        if model is not None and self.settings.keep_candidates > 0:
            self._save_candidate(trial.trial_id, model, genome, accuracy)
            self._kept.add(trial.trial_id)
        metrics = {}
        if self.latency_of is not None:
            metrics["latency_s"] = self.latency_of(genome)
            score = fitness(accuracy, metrics["latency_s"], self.latency_of(self.space.reference_genome()), self.lam)
        else:
            score = fitness(accuracy, candidate_cost.flops, self.reference_flops, self.lam)
        return {
            **metrics,
            "fitness": score,
            "accuracy": float(accuracy),
            "flops": float(candidate_cost.flops),
            "binary_macs": float(candidate_cost.binary_macs),
            "memory_bits": float(candidate_cost.memory_bits),
            "duration_s": time.time() - start,
        }

    def _card(self, genome, metrics=None) -> artifact.ModelCard:
        return artifact.ModelCard(
            space=self.space.get_config(), genome=dict(genome), quantizer=self.quantizer,
            input_shape=tuple(self.dataset.input_shape), num_classes=self.dataset.num_classes,
            metrics=dict(metrics or {}), dataset=self.dataset.name,
        )

    def _save_candidate(self, trial_id, model, genome, accuracy) -> None:
        artifact.save(Path(self.get_trial_dir(trial_id)) / "candidate", model,
                      self._card(genome, {"search_val_accuracy": accuracy}))

    def load_model(self, trial):
        """The trial's model as it was scored: its saved weights (scratch / inherit), or extracted from the
        supernet with BatchNorm recalibrated on the run's batches (oneshot)."""
        directory = Path(self.get_trial_dir(trial.trial_id)) / "candidate"
        if (directory / artifact.CARD_FILE).exists():
            return artifact.load(directory)[0]
        genome = self.space.genes.from_hyperparameters(trial.hyperparameters)
        self.prepare()
        model = self.evaluator().model_for(genome)
        if model is None:
            raise ValueError(f"Trial {trial.trial_id} kept no weights: search.keep_candidates="
                             f"{self.settings.keep_candidates} keeps only the best ones' (Python: "
                             "SearchSettings(keep_candidates=N)); raise it, or retrain the genome.")
        return model

    def on_trial_end(self, trial):
        """Keras Tuner hook; writes the trial to `<project>/tensorboard` (HParams: genes, accuracy, flops,
        fitness, latency; see `hparams_log`), then calls every `SearchCallback`'s `on_trial_record` and
        `on_results`."""
        super().on_trial_end(trial)
        hparams_log.log_trial(Path(self.project_dir) / "tensorboard", self.oracle, trial.trial_id)
        self._prune_candidates()
        if not self.search_callbacks:
            return
        if hasattr(self.oracle, "trials"):
            records = self.trial_records()
        else:  # a distributed worker: the trials live on the chief, which only sends this one back
            records = [self._record(trial.trial_id, self.oracle.get_trial(trial.trial_id))]
        record = next((r for r in records if r["trial_id"] == trial.trial_id), None)
        for callback in self.search_callbacks:
            if record is not None:
                callback.on_trial_record(record, records)
            callback.on_results(self)

    def _prune_candidates(self) -> None:
        """Deletes the saved weights of candidates outside the `keep_candidates` best (ended trials only).

        In one process (or on the chief) every ended trial's folder is checked, resumed runs included;
        a distributed worker prunes the candidates it saved itself (another worker's trial may not have
        ended yet), so until every worker's last trial ends up to N + workers weights may remain.
        """
        keep = self.settings.keep_candidates
        best = {t.trial_id for t in self.oracle.get_best_trials(keep)} if keep else set()
        if hasattr(self.oracle, "trials"):
            ended = {i for i, t in self.oracle.trials.items() if t.status != kt.engine.trial.TrialStatus.RUNNING}
        else:
            ended = set(self._kept)
        for trial_id in ended - best:
            directory = Path(self.get_trial_dir(trial_id)) / "candidate"
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
            self._kept.discard(trial_id)

    # -- results -------------------------------------------------------------
    def trial_records(self) -> List[Dict[str, Any]]:
        """Every trial as a plain dict: id, generation, origin, parents, genome, status, metrics, duration, message."""
        ordered = sorted(self.oracle.trials.items(), key=lambda item: (len(item[0]), item[0]))
        return [self._record(trial_id, trial) for trial_id, trial in ordered]

    def _record(self, trial_id: str, trial) -> Dict[str, Any]:
        return {
            "trial_id": trial_id,
            **_lineage(self.oracle, trial_id),
            "genome": self.space.genes.from_hyperparameters(trial.hyperparameters),
            "status": trial.status,
            **{name: _last_value(trial, name) for name in METRICS},
            "message": _short_message(trial.message),
        }

    def pareto_set(self) -> List[Dict[str, Any]]:
        """The completed trials no other trial beats on both accuracy (higher) and FLOPs (lower)."""
        completed = {r["trial_id"]: r for r in self.trial_records() if r["status"] == "COMPLETED"}
        keys = pareto_front((key, r["accuracy"], r["flops"]) for key, r in completed.items())
        return [completed[key] for key in keys]

    def results_summary(self, num_trials: int = 10) -> None:
        """Prints the best trials: genome (paper order), accuracy, FLOPs and fitness."""
        completed = [r for r in self.trial_records() if r["status"] == "COMPLETED"]
        completed.sort(key=lambda r: -r["fitness"])
        print(f"Results summary: {len(completed)} completed trials in {self.project_dir}")
        print(f"{'trial':>6}  {'fitness':>8}  {'acc %':>6}  {'MFLOPs':>8}  genome")
        for record in completed[:num_trials]:
            genome = ",".join(f"{v:g}" for v in record["genome"].values())
            print(f"{record['trial_id']:>6}  {record['fitness']:8.2f}  {record['accuracy']:6.2f}  "
                  f"{record['flops'] / 1e6:8.3f}  {genome}")


def _last_value(trial, name):
    """The metric's last value; None when it is missing, NaN or infinite (results stay strict JSON)."""
    if not trial.metrics.exists(name):
        return None
    value = trial.metrics.get_last_value(name)
    return float(value) if value is not None and math.isfinite(value) else None


def _lineage(oracle, trial_id) -> Dict[str, Any]:
    """{"generation", "origin", "parents"} of a trial: the EvolutionaryOracle's lineage, or None for other oracles."""
    try:
        lineage = oracle.lineage(trial_id)
    except (AttributeError, ValueError):
        try:
            return {"generation": oracle.generation_of(trial_id), "origin": None, "parents": None}
        except (AttributeError, ValueError):
            return {"generation": None, "origin": None, "parents": None}
    return {"generation": lineage["generation"], "origin": lineage["origin"], "parents": list(lineage["parents"])}


def _short_message(message: Optional[str]) -> Optional[str]:
    if not message:
        return None
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _refuse_search_settings(kwargs: Dict[str, Any]) -> None:
    """A search setting passed as a keyword argument (the pre-settings API) is refused with the fix."""
    names = set(SearchSettings.model_fields) | {"lambda"}
    given = sorted(name for name in kwargs if name in names)
    if given:
        example = ", ".join(f"{name}=..." for name in given)
        raise ValueError(f"BinaryArchitectureSearch got the search setting(s) {given} as keyword arguments; "
                         f"pass them as settings=SearchSettings({example}).")
