"""`run_recipe`: one search end to end, resumable, in one run directory.

recipe -> space + data + oracle -> tuner trials -> results.json -> random
search -> study (final-trained table, several seeds) -> report -> registry. Every stage skips what the run directory
already holds, so running the same command again resumes where it stopped.

Run directory:

    recipe.yaml        the resolved recipe (a different recipe is refused)
    tuner/             the Keras Tuner project (oracle state, trials)
    random_search/     the random-search baseline's project (when `final.random_search`)
    study/             every final training of the study (one folder per row and seed)
    results.json       every trial, the Pareto set, the study table and its verdict
    report.md, plots/  the report (`lqsearch recipe report RUN_DIR` rebuilds them)
    final/             the search's winner, final-trained (first seed): what `zoo publish` publishes
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

import keras_tuner as kt

from lqsearch import io, training
from lqsearch.data import load_dataset
from lqsearch.deploy import artifact, registry
from lqsearch.run import front, recipes, study, verdict
from lqsearch.run import workers as workers_module
from lqsearch.run.progress import Progress, clock
from lqsearch.run.report import write_report
from lqsearch.run.validation import PUBLISHED_FILE, RECIPE_FILE, RunDirError, check_run_dir, validate
from lqsearch.search.random_search import ConstrainedRandomSearch
from lqsearch.search.tuner import BinaryArchitectureSearch, SearchCallback, budget_constraint
from lqsearch.spaces import BoundSpace

__all__ = ["run_recipe", "rebuild_report", "RunDirError", "prepare_run_dir"]

RESULTS_FILE = "results.json"
#: How long a worker waits for the chief to write the run directory.
WORKER_WAIT_S = 600.0
FINAL_DIR = "final"


def prepare_run_dir(recipe: recipes.Recipe, out_dir: Path) -> bool:
    """Checks `out_dir` for `recipe` (`validation.check_run_dir`) and records the recipe there.

    Returns:
        True when resuming an earlier run of the same recipe.

    Raises:
        RunDirError: if `out_dir` is unusable (a file, read-only, another recipe's run, a non-empty
            directory that is not a run directory). Nothing is written then.
    """
    if check_run_dir(recipe, out_dir):
        return True
    io.atomic_write_text(out_dir / RECIPE_FILE, recipes.to_yaml(recipe))
    return False


class _RunCallback(SearchCallback):
    """Progress lines and a fresh `results.json` after every trial."""

    def __init__(self, progress: Optional[Progress], write: Any):
        self.progress, self.write = progress, write

    def on_trial_record(self, record: Dict[str, Any], records: List[Dict[str, Any]]) -> None:
        if self.progress is not None:
            self.progress.trial(record, records)

    def on_prepare_begin(self, what: str) -> None:
        if self.progress is not None:
            self.progress.say(f"Preparing the search: this process {what} (once per run directory)")

    def on_prepare_log(self, line: str) -> None:
        if self.progress is not None:
            self.progress.say(line)

    def on_prepare_end(self, preparation: Dict[str, Any]) -> None:
        if self.progress is not None:
            how = "trained" if preparation["trained"] else "loaded from the run directory"
            self.progress.say(f"Prepared in {clock(preparation['seconds'])} ({how})")

    def on_results(self, tuner) -> None:
        self.write()


def load_data(recipe: recipes.Recipe):
    """The recipe's dataset (search splits from train only)."""
    return load_dataset(recipe.dataset, recipe.data)


def bind(recipe: recipes.Recipe, space, dataset) -> BoundSpace:
    """The recipe's space bound to the dataset's shape and classes and the recipe's quantizer."""
    return space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer=recipe.quantizer)


def build_tuner(recipe: recipes.Recipe, space, dataset, out_dir: Path, callbacks=(), verbose: int = 0):
    """The `BinaryArchitectureSearch` of `recipe`, resuming the project in `out_dir/tuner`."""
    return BinaryArchitectureSearch(
        bind(recipe, space, dataset), dataset, settings=recipe.search.settings(), evaluation=recipe.evaluation,
        strategy=training.get_strategy(recipe.strategy), search_callbacks=callbacks, verbose_training=verbose,
        directory=str(out_dir), project_name="tuner", overwrite=False,
    )


def baseline_rows(recipe: recipes.Recipe, tuner, out_dir: Path) -> List[Dict[str, Any]]:
    """Baselines (uniform values or genomes): cost always; search-val accuracy when the recipe asks,
    evaluated like any candidate and cached in `baselines.json` for resumes."""
    cache_path = out_dir / "baselines.json"
    cached = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    rows = []
    for value in recipe.search.baselines:
        if isinstance(value, (list, dict)):
            genome = tuner.space.genome(value)
            label = "Baseline " + ",".join(f"{v:g}" for v in genome.values())
        else:
            genome = tuner.space.uniform(value)
            label = f"Uniform-{value:g}x" if _is_width_space(tuner.space) else f"Uniform groups={value:g}"
        row_cost = tuner.cost_of(genome)
        accuracy = cached.get(label)
        if accuracy is None and recipe.search.evaluate_baselines:
            accuracy = tuner.evaluator().evaluate(genome)[0]
            cached[label] = accuracy
            io.write_json(cache_path, cached)
        rows.append({"label": label, "genome": genome, "flops": row_cost.flops, "memory_bits": row_cost.memory_bits,
                     "accuracy": accuracy})
    return rows


def _is_width_space(space) -> bool:
    return all(g.kind == "width" for g in space.genes)


def distribution(recipe: recipes.Recipe, strategy) -> Dict[str, Any]:
    """How the run is spread: the strategy, its replicas in sync, the workers of `TF_CONFIG`, the precision."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    workers = len(cluster.get("worker", ())) + len(cluster.get("chief", ()))
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    precision = {"search": training.precision_policy(recipe.evaluation.training),
                 "final": training.precision_policy(recipe.final.training)}
    return {"strategy": recipe.strategy, "replicas": replicas, "workers": max(1, workers), "precision": precision}


def write_results(out_dir: Path, recipe: recipes.Recipe, tuner, baselines, outcome=None,
                  random_best=None) -> Dict[str, Any]:
    """Writes `results.json` atomically and returns it (`outcome`: the study's, once it ran)."""
    outcome = outcome or {"study": None, "study_verdict": None, "study_comparisons": None, "final": None}
    trials = tuner.trial_records()
    results = {
        "recipe": recipe.name,
        "space": tuner.space.get_config(),
        "quantizer": tuner.quantizer,
        "dataset": recipe.dataset,
        "objective": "fitness",
        "selection": recipe.search.selection,
        "objectives": list(recipe.search.objectives),
        "lambda": recipe.search.lam,
        "cost_metric": recipe.search.cost_metric,
        "max_flops": recipe.search.max_flops,
        "reference_flops": tuner.reference_flops,
        "seed": recipe.search.seed,
        "schedule": recipe.search.schedule,
        "stop_reason": getattr(tuner.oracle, "stop_reason", None),
        "preparation": tuner.preparation,
        "distribution": distribution(recipe, tuner.strategy),
        "trials": trials,
        "pareto": [t["trial_id"] for t in tuner.pareto_set()],
        "baselines": baselines,
        "random_search": random_best,
        **outcome,
    }
    io.write_json(out_dir / RESULTS_FILE, results)
    return results


def run_random_search(recipe: recipes.Recipe, space, dataset, out_dir: Path, budget: int,
                      progress: Progress, verbose: int) -> Optional[Dict[str, Any]]:
    """The random-search row: `budget` random genomes under the same ceiling and evaluation; its best record.

    It shares the evolution's one-off preparation (widest network or supernet) through `prepare_dir`.
    """
    if budget < 1:
        return None
    search = recipe.search
    bound = bind(recipe, space, dataset)
    oracle = ConstrainedRandomSearch(
        objective=kt.Objective("fitness", "max"), max_trials=budget, seed=search.seed,
        constraint=budget_constraint(space, bound.cost, search.max_flops) if search.max_flops else None,
    )
    tuner = BinaryArchitectureSearch(
        bound, dataset, settings=search.settings(), evaluation=recipe.evaluation, oracle=oracle,
        strategy=training.get_strategy(recipe.strategy),
        search_callbacks=[_RunCallback(Progress(budget, budget, stream=progress.stream), write=lambda: None)],
        prepare_dir=str(out_dir / "tuner"), verbose_training=verbose,
        directory=str(out_dir), project_name="random_search", overwrite=False,
    )
    progress.say(f"Random search: {budget} candidates, same evaluation and ceiling as the evolution")
    tuner.search(verbose=0)
    completed = [r for r in tuner.trial_records() if r["status"] == "COMPLETED"]
    return max(completed, key=lambda r: r["fitness"]) if completed else None


def run_study(recipe: recipes.Recipe, tuner, dataset, out_dir: Path, random_best, progress: Progress,
              verbose: int) -> Dict[str, Any]:
    """Final-trains every row of the study over the recipe's seeds; the table, its verdict and `final/`.

    With `search.selection: pareto` the searched rows are `final.front_points` points of the final front
    (`lqsearch.run.front`), each with its iso-cost row, and the verdict is `verdict.front_verdict`."""
    pareto = recipe.search.selection == "pareto"
    if pareto:  # K points spread along the final front, the one of best search fitness first
        searched, labels = front.study_order(front.front_points(tuner.trial_records(), recipe.final.front_points,
                                                                recipe.search.objectives[1]))
    else:
        searched = sorted((t for t in tuner.trial_records() if t["status"] == "COMPLETED"),
                          key=lambda t: -t["fitness"])[: recipe.final.top_n]
        labels = None
    rows = study.entries(tuner.space, searched=searched, baselines=recipe.search.baselines,
                         quantizer=tuner.quantizer, random_best=random_best, float_twin=recipe.final.float_twin,
                         input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                         max_flops=recipe.search.max_flops, front_labels=labels)
    config = recipe.final.config()
    seeds = [recipe.search.seed + i for i in range(recipe.final.seeds)]
    progress.say(f"Study: {len(rows)} architectures x {len(seeds)} seeds, {config.epochs} epochs each, on the full "
                 "train set, scored on the test set")
    table = study.train_study(rows, space=tuner.space, dataset=dataset, config=config, seeds=seeds, out_dir=out_dir,
                              progress=progress, strategy=tuner.strategy, verbose=verbose)
    final = None
    winner = next((row for row in table if row["kind"] == "searched"), None)
    if winner is not None:
        _publishable_copy(out_dir / winner["model_dirs"][0], out_dir / FINAL_DIR)
        final = {"genome": winner["genome"], "model_dir": FINAL_DIR, "trial_id": searched[0]["trial_id"],
                 "test_accuracy": winner["test_accuracy"][0], "test_accuracy_mean": winner["test_accuracy_mean"],
                 "test_top5": (winner.get("test_top5") or [None])[0], "seeds": seeds}
    band = recipe.final.band
    judged = verdict.front_verdict(table, band=band) if pareto else verdict.main_verdict(table, band=band)
    return {"study": table, "study_verdict": judged,
            "study_comparisons": [c["sentence"] for c in verdict.comparisons(table, band=band)], "final": final}


def _publishable_copy(source: Path, target: Path) -> None:
    """Copies the winner's first-seed model to `final/` (what `lqsearch zoo publish RUN_DIR` publishes), atomically."""
    if (target / artifact.CARD_FILE).exists() and artifact.load_card(target) == artifact.load_card(source):
        return
    staging = target.parent / f".{target.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)


def publish(recipe: recipes.Recipe, out_dir: Path, progress: Progress) -> None:
    """Publishes the final model once; `published.json` records it so a resume does not publish again."""
    marker = out_dir / PUBLISHED_FILE
    if marker.exists():
        progress.say(f"Already published: {marker.read_text().strip()}")
        return
    entry = registry.publish(out_dir, name=recipe.publish.name, version=recipe.publish.version,
                             registry=recipe.publish.registry)
    io.write_json(marker, {"name": entry["name"], "version": entry["version"]})
    progress.say(f"Published {entry['name']} version {entry['version']}")


def run_recipe(recipe: recipes.Recipe, out_dir, *, verbose: int = 0, stream: TextIO = sys.stdout,
               pool: Optional[workers_module.WorkerPool] = None) -> Dict[str, Any]:
    """Runs (or resumes) `recipe` into `out_dir`; returns the results.

    Everything is validated first (`lqsearch.run.validation.validate`: run directory, registry, data,
    search settings), so bad input is refused before anything is written. In a Keras Tuner worker
    process (`workers.is_worker()`) it only runs trials and returns {}. With `pool` (this process
    being the chief), the pool's workers start once the preparation is done and run every trial.

    Raises:
        RunDirError: if `out_dir` is unusable or holds another recipe's run.
        RecipeError, DataError, lqsearch.deploy.registry_files.RegistryError: on input the run cannot use.
    """
    training.seed_everything(recipe.search.seed, recipe.deterministic)
    if workers_module.is_worker():
        return _run_worker(recipe, Path(out_dir), verbose, stream)
    run = validate(recipe, out_dir, load_data=load_data)  # writes nothing
    out_dir, space, dataset = run.out_dir, run.space, run.dataset
    resuming = prepare_run_dir(recipe, out_dir)
    progress = Progress(recipe.search.trials, recipe.search.population_size, stream)
    progress.say(f"{'Resuming' if resuming else 'Running'} recipe {recipe.name!r} in {out_dir}")
    baselines: List[Dict[str, Any]] = []
    callback = _RunCallback(progress, lambda: write_results(out_dir, recipe, tuner, baselines))
    tuner = build_tuner(recipe, space, dataset, out_dir, (callback,), verbose)
    progress.resume_from(sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED"))
    tuner.prepare(verbose=0)  # before the baselines and the first trial; its lines go through the callback
    baselines.extend(baseline_rows(recipe, tuner, out_dir))
    if pool is not None:
        progress.say(f"Search: {pool.workers} worker processes run the trials; this process is the chief")
        pool.start()
    try:
        tuner.search(verbose=0)  # the chief serves the trials to the workers until every one has ended
    finally:
        if pool is not None:
            pool.wait()
    if getattr(tuner.oracle, "stop_reason", None):
        progress.say(f"Search: {tuner.oracle.stop_reason}")
    write_results(out_dir, recipe, tuner, baselines, None)
    evaluated = sum(1 for t in tuner.trial_records() if t["status"] == "COMPLETED")
    with workers_module.single_process():  # the stages after the search run in the chief alone
        random_best = (run_random_search(recipe, space, dataset, out_dir, evaluated, progress, verbose)
                       if recipe.final.random_search else None)
        outcome = run_study(recipe, tuner, dataset, out_dir, random_best, progress, verbose)
    results = write_results(out_dir, recipe, tuner, baselines, outcome, random_best)
    write_report(out_dir, results, space=space)
    if outcome["study_verdict"]:
        progress.say(f"Verdict: {outcome['study_verdict']}")
    final = outcome["final"]
    if recipe.publish.name and final is not None:
        publish(recipe, out_dir, progress)
    progress.say(f"Report: {out_dir / 'report.md'}")
    return results


def _run_worker(recipe: recipes.Recipe, out_dir: Path, verbose: int, stream: TextIO) -> Dict[str, Any]:
    """A distributed worker: waits for the chief's run directory, then only runs trials (see `workers`)."""
    deadline = time.monotonic() + WORKER_WAIT_S
    while not (out_dir / RECIPE_FILE).exists():
        if time.monotonic() > deadline:
            raise RunDirError(f"{out_dir} holds no {RECIPE_FILE} after {WORKER_WAIT_S:.0f} s: start the chief first "
                              "(the same command without KERASTUNER_TUNER_ID, or with KERASTUNER_TUNER_ID=chief).")
        time.sleep(1)
    run = validate(recipe, out_dir, load_data=load_data)  # the chief wrote the same recipe: a resume, nothing written
    progress = Progress(recipe.search.trials, recipe.search.population_size, stream)
    progress.say(f"Worker {os.environ.get('KERASTUNER_TUNER_ID')}: running trials of {run.out_dir}")
    tuner = build_tuner(recipe, run.space, run.dataset, run.out_dir, (_RunCallback(progress, lambda: None),), verbose)
    tuner.search(verbose=0)  # the evaluator's preparation is loaded from the chief's run directory
    return {}


def rebuild_report(run_dir) -> Dict[str, Path]:
    """Rewrites `report.md` and the plots of a run from its `results.json`, with no training.

    Raises:
        RunDirError: if `run_dir` holds no readable `results.json`.
    """
    path = Path(run_dir) / RESULTS_FILE
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RunDirError(f"cannot read {path} ({error}); give the folder of a `lqsearch recipe run`, "
                          "which writes results.json after every trial.") from None
    if not isinstance(results, dict) or "space" not in results or "trials" not in results:
        raise RunDirError(f"{path} is not the results.json of an lqsearch run (no 'space' or 'trials').")
    return write_report(run_dir, results)
