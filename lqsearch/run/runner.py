"""`run_recipe`: one search end to end, resumable, in one run directory.

recipe -> space + data + oracle -> tuner trials -> results.json -> final
retraining -> report -> registry. Every stage skips what the run directory
already holds, so running the same command again resumes where it stopped.

Run directory:

    recipe.yaml        the resolved recipe (a different recipe is refused)
    tuner/             the Keras Tuner project (oracle state, trials)
    results.json       every trial, the Pareto set, baselines, final scores
    report.md, plots/  the report
    final/             the retrained best model (lqsearch artifact)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

from lqsearch import io
from lqsearch.data import load_dataset
from lqsearch.deploy import registry
from lqsearch.run import recipes
from lqsearch.run.final import retrain
from lqsearch.run.report import write_report
from lqsearch.run.validation import PUBLISHED_FILE, RECIPE_FILE, RunDirError, check_run_dir, validate
from lqsearch.search.evaluation import EvaluationConfig
from lqsearch.search.tuner import BinaryArchitectureSearch, SearchCallback
from lqsearch.training import get_strategy

__all__ = ["run_recipe", "RunDirError", "prepare_run_dir"]

RESULTS_FILE = "results.json"


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


class Progress:
    """One line per trial with a generation bar, the best fitness so far, elapsed time and ETA."""

    def __init__(self, total: int, population: int, stream: TextIO = sys.stdout):
        self.total, self.population, self.stream = total, population, stream
        self.start = time.time()
        self.best: Optional[float] = None
        self.started_at = 0  # completed trials when this process started (for the ETA)

    def resume_from(self, completed: int) -> None:
        """Counts the ETA from `completed` trials finished before this process started."""
        self.started_at = completed

    def trial(self, record: Dict[str, Any], done: int) -> None:
        if record.get("fitness") is not None and record["status"] == "COMPLETED":
            self.best = record["fitness"] if self.best is None else max(self.best, record["fitness"])
        elapsed = time.time() - self.start
        fresh = max(1, done - self.started_at)
        eta = elapsed / fresh * max(0, self.total - done)
        generation = (done - 1) // self.population
        in_generation = (done - 1) % self.population + 1
        bar = "#" * round(10 * in_generation / self.population)
        metrics = (
            f"fitness {record['fitness']:.2f} acc {record['accuracy']:.2f}% MFLOPs {record['flops'] / 1e6:.3f}"
            if record["status"] == "COMPLETED" else f"{record['status']}: {record.get('message') or ''}"
        )
        best = "-" if self.best is None else f"{self.best:.2f}"
        print(
            f"gen {generation} [{bar:<10}] {done}/{self.total} trial {record['trial_id']} {metrics} | best {best} | "
            f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}",
            file=self.stream, flush=True,
        )

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _RunCallback(SearchCallback):
    """Progress lines and a fresh `results.json` after every trial."""

    def __init__(self, progress: Optional[Progress], write: Any):
        self.progress, self.write = progress, write

    def on_trial_record(self, record: Dict[str, Any], completed: int) -> None:
        if self.progress is not None:
            self.progress.trial(record, completed)

    def on_results(self, tuner) -> None:
        self.write()


def load_data(recipe: recipes.Recipe):
    """The recipe's dataset (search splits from train only)."""
    options = {k: v for k, v in vars(recipe.data).items() if v is not None}
    if "image_size" in options:
        options["image_size"] = (options["image_size"], options["image_size"])
    return load_dataset(recipe.dataset, **options)


def build_tuner(recipe: recipes.Recipe, space, dataset, out_dir: Path, callbacks=(), verbose: int = 0):
    """The `BinaryArchitectureSearch` of `recipe`, resuming the project in `out_dir/tuner`."""
    evaluation = recipe.evaluation
    config = EvaluationConfig(
        mode=evaluation.mode, epochs=evaluation.epochs, training=evaluation.training.config(),
        widest_epochs=evaluation.widest_epochs, supernet_steps=evaluation.supernet_steps,
        recalibration_batches=evaluation.recalibration_batches, sandwich=evaluation.sandwich, distill=evaluation.distill,
    )
    search = recipe.search
    tuner = BinaryArchitectureSearch(
        space, dataset, quantizer=recipe.quantizer, evaluation=config, lam=search.lam, cost_metric=search.cost_metric,
        max_flops=search.max_flops,
        verbose_training=verbose, strategy=get_strategy(recipe.strategy), max_trials=search.trials, population_size=search.population_size,
        num_parents=search.num_parents, num_crossovers=search.num_crossovers, num_mutations=search.num_mutations,
        mutation_rate=search.mutation_rate, seed=search.seed, directory=str(out_dir), project_name="tuner", overwrite=False,
        search_callbacks=callbacks,
    )
    return tuner


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
        rows.append({"label": label, "genome": genome, "flops": row_cost.flops, "memory_bits": row_cost.memory_bits, "accuracy": accuracy})
    return rows


def _is_width_space(space) -> bool:
    return all(g.kind == "width" for g in space.genes)


def write_results(out_dir: Path, recipe: recipes.Recipe, tuner, baselines, final) -> Dict[str, Any]:
    """Writes `results.json` atomically and returns it."""
    trials = tuner.trial_records()
    results = {
        "recipe": recipe.name,
        "space": tuner.space.get_config(),
        "quantizer": tuner.quantizer,
        "dataset": recipe.dataset,
        "objective": "fitness",
        "lambda": recipe.search.lam,
        "cost_metric": recipe.search.cost_metric,
        "max_flops": recipe.search.max_flops,
        "reference_flops": tuner.reference_flops,
        "stop_reason": getattr(tuner.oracle, "stop_reason", None),
        "trials": trials,
        "pareto": [t["trial_id"] for t in tuner.pareto_set()],
        "baselines": baselines,
        "final": final,
    }
    io.write_json(out_dir / RESULTS_FILE, results)
    return results


def run_final(recipe: recipes.Recipe, tuner, dataset, out_dir: Path, verbose: int) -> Optional[Dict[str, Any]]:
    """Retrains the top-N genomes; the best by test accuracy is `out_dir/final`."""
    completed = sorted((t for t in tuner.trial_records() if t["status"] == "COMPLETED"), key=lambda t: -t["fitness"])
    if not completed:
        return None
    cards = []
    for rank, record in enumerate(completed[: recipe.final.top_n]):
        directory = out_dir / ("final" if rank == 0 else f"final_{rank}")
        card = retrain(
            tuner.space, record["genome"], dataset, recipe.final.training.config().replace(epochs=recipe.final.epochs),
            quantizer=tuner.quantizer, out_dir=directory, verbose=verbose, extra={"trial_id": record["trial_id"]},
            strategy=tuner.strategy,
        )
        cards.append((directory.name, card))
    name, best = cards[0]
    return {
        "genome": best.genome, "model_dir": name, "trial_id": best.extra.get("trial_id"),
        "test_accuracy": best.metrics["test_accuracy"], "test_top5": best.metrics.get("test_top5"),
        "others": [{"model_dir": n, "genome": c.genome, "test_accuracy": c.metrics["test_accuracy"]} for n, c in cards[1:]],
    }


def publish(recipe: recipes.Recipe, out_dir: Path, progress: Progress) -> None:
    """Publishes the final model once; `published.json` records it so a resume does not publish again."""
    marker = out_dir / PUBLISHED_FILE
    if marker.exists():
        progress.say(f"Already published: {marker.read_text().strip()}")
        return
    entry = registry.publish(out_dir, name=recipe.publish.name, version=recipe.publish.version, registry=recipe.publish.registry)
    io.write_json(marker, {"name": entry["name"], "version": entry["version"]})
    progress.say(f"Published {entry['name']} version {entry['version']}")


def run_recipe(recipe: recipes.Recipe, out_dir, *, verbose: int = 0, stream: TextIO = sys.stdout) -> Dict[str, Any]:
    """Runs (or resumes) `recipe` into `out_dir`; returns the results.

    Everything is validated first (`lqsearch.run.validation.validate`: run directory, registry, data,
    search settings), so bad input is refused before anything is written.

    Raises:
        RunDirError: if `out_dir` is unusable or holds another recipe's run.
        RecipeError, DataError, lqsearch.deploy.registry_files.RegistryError: on input the run cannot use.
    """
    run = validate(recipe, out_dir, load_data=load_data)  # writes nothing
    out_dir, space, dataset = run.out_dir, run.space, run.dataset
    resuming = prepare_run_dir(recipe, out_dir)
    progress = Progress(recipe.search.trials, recipe.search.population_size, stream)
    progress.say(f"{'Resuming' if resuming else 'Running'} recipe {recipe.name!r} in {out_dir}")
    baselines: List[Dict[str, Any]] = []
    callback = _RunCallback(progress, lambda: write_results(out_dir, recipe, tuner, baselines, None))
    tuner = build_tuner(recipe, space, dataset, out_dir, (callback,), verbose)
    progress.resume_from(sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED"))
    baselines.extend(baseline_rows(recipe, tuner, out_dir))
    tuner.search(verbose=0)
    if getattr(tuner.oracle, "stop_reason", None):
        progress.say(f"Search: {tuner.oracle.stop_reason}")
    write_results(out_dir, recipe, tuner, baselines, None)
    progress.say("Final retraining of the best genome(s) on the full train set")
    final = run_final(recipe, tuner, dataset, out_dir, verbose)
    results = write_results(out_dir, recipe, tuner, baselines, final)
    write_report(out_dir, results, space=space)
    if final is not None:
        progress.say(f"Final test accuracy {final['test_accuracy']:.2f}% for genome {list(final['genome'].values())}")
    if recipe.publish.name and final is not None:
        publish(recipe, out_dir, progress)
    progress.say(f"Report: {out_dir / 'report.md'}")
    return results
