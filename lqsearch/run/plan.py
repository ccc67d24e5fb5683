"""`plan_recipe`: what a recipe's run will do and cost, per stage, projected from a short probe (nothing written).

Stages: the one-off preparation (the widest network for `inherit`, the supernet
for `oneshot`), the search's candidates (and the baselines scored like them),
the random search, the study (rows x seeds, final-trained and tested) and the
final publish. For each: trainings and evaluations, epochs, images and steps,
then disk (checkpoints, kept weights, ImageNet subsets) and host RAM.

The wall time is a projection, not a measurement: a few training steps of the
space's cheapest and reference networks (and of its costliest genome when that
is cheap enough) at the recipe's image size, timed on the current device, and a JPEG
decode probe for ImageNet-format data; the per-step time is multiplied by the
steps, plus per-training overheads (build, compile, tracing) measured by the
same probe. Candidates' step times are interpolated by their MACs between the
probed genomes, averaged over random genomes under the ceiling. For the paper
recipes, the papers' own GPU-hours are printed beside it.
"""
from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional

import numpy as np

from lqsearch import spaces
from lqsearch.cost import CostCache
from lqsearch.data import DataConfig, load_dataset
from lqsearch.data.sources import TFDS_SOURCES, parse_source
from lqsearch.run import recipes, study
from lqsearch.run._plan_probe import Probe

__all__ = ["plan_recipe", "format_plan", "PAPER_COSTS"]

#: Known split sizes of the tfds sources: (train, test, classes, image shape).
TFDS_SIZES = {
    "cifar10": (50_000, 10_000, 10, (32, 32, 3)), "cifar100": (50_000, 10_000, 100, (32, 32, 3)),
    "mnist": (60_000, 10_000, 10, (28, 28, 1)), "fashion_mnist": (60_000, 10_000, 10, (28, 28, 1)),
    "imagenet2012": (1_281_167, 50_000, 1000, (224, 224, 3)),
}
#: The papers' own search cost, quoted from their text (seeds in /work/shared/seeds/).
PAPER_COSTS = {
    "vgg_small_cifar10_width": "Shen et al. (Sec. 4.1): the CIFAR-10 search 'takes about 12 hours on 8 V100 GPUs' "
                               "(~96 GPU-hours), then 200 epochs of final training",
    "resnet18_imagenet_width": "Shen et al. (Sec. 4.1): the ImageNet search 'takes about 180 hours on 8 V100 GPUs' "
                               "(~1,440 GPU-hours), then 150 epochs of final training",
    "mobilenet_m1_imagenet_groups": "Phan et al. (Table 2): 30 GPU-hours of searching (M1; 'about 29 h on one GPU' "
                                    "on average), final training on four RTX 2080 Ti not counted",
    "mobilenet_m2_imagenet_groups": "Phan et al. (Table 2): 32 GPU-hours of searching (M2), final training not counted",
    "mobilenet_m3_imagenet_groups": "Phan et al. (Table 2): 26 GPU-hours of searching (M3), final training not counted",
}
#: Average size of an ImageNet training JPEG (the 1.28 M images take about 140 GB).
IMAGENET_JPEG_BYTES = 110_000
#: Seconds to measure one study row's LCE latency (conversion + interpreter), measured on the quickstart.
LCE_SECONDS_PER_ROW = 6.0
#: Host RAM of the Python process with TensorFlow and one small model loaded (RSS measured on 2 cores).
RUNTIME_BYTES = 750 * 2**20
#: Seconds a search trial costs beyond its model's build, tracing and steps (Keras Tuner's trial files, the
#: TensorBoard logs, the data pipeline's set-up, the evaluation's compile), on 2 idle cores: the quickstart's
#: candidates took 5.7-5.9 s each where the probe projects 5.5 s, fashion_mnist_width_cpu's 3.4-3.6 s where it
#: projects 3.0 s. (6 s before, calibrated on a quickstart run sharing its cores with other work.)
TRIAL_OVERHEAD_S = 0.5
#: The same for a one-shot trial (the tuner's bookkeeping around the supernet's recalibration and scoring, which
#: the probe times): fashion_mnist_groups_cpu's candidates took 0.8 s (evolution) and 1.1 s (random search, the
#: supernet's reload included) each where the probe projects 0.7 s of evaluation.
ONESHOT_TRIAL_OVERHEAD_S = 0.3
#: Random genomes averaged for the candidates' mean step time.
SAMPLED_GENOMES = 200


def plan_recipe(recipe: recipes.Recipe, *, probe: bool = True) -> Dict[str, Any]:
    """What `recipe`'s run will do and cost; nothing is trained for real and nothing is written.

    Arguments:
        recipe: a validated recipe (`lqsearch.run.recipes.load_recipe`).
        probe: time a few training steps on this device (False: counts only, no times).

    Returns:
        {"recipe", "data" (split sizes), "stages" (list of dicts: name, what, trainings, evaluations,
        epochs, images, steps, seconds), "disk_bytes", "ram_bytes", "seconds", "probe" (what was timed
        and where), "paper" (the paper's own cost or None)}.

    Raises:
        lqsearch.data.DataError: if a local data source cannot be read.
    """
    space = spaces.get(recipe.space, **recipe.space_options)
    quantizer = recipe.quantizer or space.default_quantizer
    sizes = _data_sizes(recipe)
    loaded = sizes.pop("loaded", None)
    shape, classes = sizes["input_shape"], sizes["num_classes"]
    cost_of = CostCache(space, input_shape=shape, num_classes=classes, quantizer=quantizer)
    macs = {name: _macs(cost_of(genome)) for name, genome in
            (("cheapest", space.cheapest()), ("reference", space.reference_genome()), ("costliest", space.costliest()))}
    timing = Probe(space, quantizer, shape, classes, recipe, macs, sizes["imagenet_format"], loaded) if probe else None
    stages = _stages(recipe, space, cost_of, sizes, timing, quantizer)
    params = {name: cost_of(genome).params for name, genome in
              (("costliest", space.costliest()), ("reference", space.reference_genome()))}
    disk = _disk(recipe, stages, params, sizes)
    ram = _ram(recipe, sizes, params, timing)
    seconds = sum(stage["seconds"] or 0.0 for stage in stages) if timing else None
    return {"recipe": recipe.name, "space": recipe.space, "dataset": recipe.dataset, "data": sizes, "stages": stages,
            "disk_bytes": disk, "ram_bytes": ram, "seconds": seconds,
            "probe": timing.summary() if timing else None, "paper": PAPER_COSTS.get(recipe.name)}


def _macs(cost) -> float:
    """All multiply-accumulates: on a CPU or GPU without LCE a binary MAC costs as much as a float one."""
    return float(cost.binary_macs + cost.fp_macs)


def _data_sizes(recipe: recipes.Recipe) -> Dict[str, Any]:
    """Split sizes, image shape and classes: local sources are read (in memory), tfds ones computed from known sizes."""
    spec = parse_source(recipe.dataset)
    config: DataConfig = recipe.data
    if spec.kind != "tfds":
        dataset = load_dataset(recipe.dataset, config)
        return {"loaded": dataset, "num_train": dataset.num_train, "num_search_train": dataset.num_search_train,
                "num_search_val": dataset.num_search_val, "num_test": dataset.num_test,
                "num_classes": dataset.num_classes, "input_shape": tuple(dataset.input_shape), "imagenet_format": False}
    train, test, classes, shape = TFDS_SIZES[spec.name]
    train = min(train, config.train_limit or train)
    test = min(test, config.test_limit or test)
    imagenet = TFDS_SOURCES[spec.name] == "imagenet"
    if config.search_val_per_class is not None:
        val = config.search_val_per_class * classes
    else:
        val = 50 * classes if imagenet else round(train * (config.search_fraction or 0.1))
    search_train = config.search_train_per_class * classes if config.search_train_per_class else train - val
    height, width = config.image_hw or shape[:2]
    return {"num_train": train, "num_search_train": search_train, "num_search_val": val, "num_test": test,
            "num_classes": classes, "input_shape": (height, width, shape[2]), "imagenet_format": imagenet}


def _steps(images: int, batch: int, cap: Optional[int]) -> int:
    steps = math.ceil(images / batch)
    return min(steps, cap) if cap else steps


def _stages(recipe, space, cost_of, sizes, timing, quantizer) -> List[Dict[str, Any]]:
    evaluation, search, final = recipe.evaluation, recipe.search, recipe.final
    eval_batch = recipe.data.eval_batch_size or recipe.data.batch_size
    val_batches = math.ceil(sizes["num_search_val"] / eval_batch)
    pool = _sampled_genomes(space, cost_of, search.max_flops)  # the first population; later ones breed from it
    candidate_macs = float(np.mean([macs for macs, _ in pool])) if pool else _macs(cost_of(space.cheapest()))
    stages = []
    if evaluation.mode == "inherit":
        config = evaluation.widest()
        steps = config.epochs * _steps(sizes["num_search_train"], config.batch_size, config.steps_per_epoch)
        seconds = timing and timing.training(timing.macs["costliest"], steps, config.batch_size, val_batches)
        stages.append(_stage("widest network", "the costliest genome, trained once on search-train", 1, 1,
                             config.epochs, steps * config.batch_size, steps, seconds))
    elif evaluation.mode == "oneshot":
        steps = evaluation.supernet_steps
        seconds = timing and timing.supernet(steps, recipe.data.batch_size)
        stages.append(_stage("supernet", "weight-sharing supernet, a random sub-genome per step", 1, 0, None,
                             steps * recipe.data.batch_size, steps, seconds))
    count = search.trials + (len(search.baselines) if search.evaluate_baselines else 0)
    per_candidate = _candidate(recipe, sizes, timing, candidate_macs, val_batches)
    what = f"{search.trials} trials" + (f" + {len(search.baselines)} baselines scored" if search.evaluate_baselines
                                         else "")
    stages.append({**per_candidate, **_scaled(per_candidate, count), "name": "search candidates",
                   "what": f"{what}, {evaluation.mode}"})
    if final.random_search:
        stages.append({**per_candidate, **_scaled(per_candidate, search.trials), "name": "random search",
                       "what": f"{search.trials} random genomes, same evaluation"})
    row_macs = _study_macs(recipe, space, cost_of, sizes, quantizer, pool)
    rows = len(row_macs)
    config = final.config()
    steps = config.epochs * _steps(sizes["num_train"], config.batch_size, config.steps_per_epoch)
    test_batches = math.ceil(sizes["num_test"] / eval_batch)
    trainings = rows * final.seeds
    seconds = None
    if timing:
        seconds = (final.seeds * sum(timing.training(macs, steps, config.batch_size, test_batches) for macs in row_macs)
                   + rows * LCE_SECONDS_PER_ROW)
    stages.append(_stage("study", f"{rows} rows x {final.seeds} seeds, final-trained on train, tested",
                         trainings, trainings, config.epochs, trainings * steps * config.batch_size,
                         trainings * steps, seconds))
    stages.append(_stage("final", "copy of the winner, report and plots" + (", publish" if recipe.publish.name
                                                                             else ""), 0, 0, None, 0, 0,
                         5.0 if timing else None))
    return stages


def _stage(name, what, trainings, evaluations, epochs, images, steps, seconds) -> Dict[str, Any]:
    return {"name": name, "what": what, "trainings": trainings, "evaluations": evaluations, "epochs": epochs,
            "images": int(images), "steps": int(steps), "seconds": seconds}


def _scaled(stage: Dict[str, Any], count: int) -> Dict[str, Any]:
    return {key: stage[key] * count for key in ("trainings", "evaluations", "images", "steps")} | {
        "seconds": None if stage["seconds"] is None else stage["seconds"] * count}


def _candidate(recipe, sizes, timing, candidate_macs, val_batches) -> Dict[str, Any]:
    """One candidate's work: trained (scratch, inherit) or scored in the supernet (oneshot)."""
    evaluation = recipe.evaluation
    if evaluation.mode == "oneshot":
        batches = evaluation.recalibration_batches
        seconds = timing and timing.oneshot(candidate_macs, batches + val_batches) + ONESHOT_TRIAL_OVERHEAD_S
        return _stage("", "", 0, 1, None, 0, 0, seconds)
    config = evaluation.config()
    steps = config.epochs * _steps(sizes["num_search_train"], config.batch_size, config.steps_per_epoch)
    seconds = timing and timing.training(candidate_macs, steps, config.batch_size, val_batches) + TRIAL_OVERHEAD_S
    return _stage("", "", 1, 1, config.epochs, steps * config.batch_size, steps, seconds)


def _study_macs(recipe, space, cost_of, sizes, quantizer, pool) -> List[float]:
    """MACs of each study row, the rows built as the run builds them (`study.entries`) around guessed winners.

    The searched genomes are guessed from the fitness: with Shen et al.'s FLOPs penalty (`lambda`) the
    winners sit near the unexpanded network (the quickstart's and the width recipe's did, while a random
    genome of a width space costs several times more); with a ceiling and accuracy alone (Phan et al.)
    they sit near it (the costliest fifth of random genomes under it); a Pareto search's front points
    spread over the costs under the ceiling. Each guess is a random, non-uniform genome of about that
    cost (from `pool`, `_sampled_genomes`), so the iso-cost rows, and the rows a baseline already stands for,
    come out as in the run.
    """
    search, final = recipe.search, recipe.final
    pool = [(macs, genome) for macs, genome in pool if len(set(genome.values())) > 1] or [
        (_macs(cost_of(space.cheapest())), space.cheapest())]  # non-uniform genomes
    if search.selection == "pareto":  # K points spread along the costs, the middle one first
        count = final.front_points
        spread = [pool[min(len(pool) - 1, (len(pool) * (2 * k + 1)) // (2 * count))][1] for k in range(count)]
        searched = [spread[count // 2]] + [genome for k, genome in enumerate(spread) if k != count // 2]
        labels = [f"Front {k + 1}/{count}" for k in range(count)]
    else:
        if search.lam is not None:
            target = _macs(cost_of(space.reference_genome()))
        else:
            costs = [macs for macs, _ in pool]
            target = float(np.mean(costs[-max(1, round(0.2 * len(costs))):] if search.max_flops else costs))
        nearest = sorted(pool, key=lambda item: abs(item[0] - target))
        searched, labels = [genome for _, genome in nearest[: final.top_n]], None
    rows = study.entries(space, searched=[{"genome": genome} for genome in searched], baselines=search.baselines,
                         quantizer=quantizer, random_best={"genome": searched[0]} if final.random_search else None,
                         float_twin=final.float_twin, input_shape=sizes["input_shape"],
                         num_classes=sizes["num_classes"], max_flops=search.max_flops, front_labels=labels)
    return [_macs(study.entry_space(space, row).cost(row.genome, input_shape=sizes["input_shape"],
                                                     num_classes=sizes["num_classes"], quantizer=quantizer))
            for row in rows]


def _sampled_genomes(space, cost_of, max_flops) -> List[tuple]:
    """(MACs, genome) of up to `SAMPLED_GENOMES` random genomes under the ceiling, cheapest first (seeded)."""
    rng = random.Random(0)
    values = []
    for _ in range(SAMPLED_GENOMES * 5):  # bounded: a tight ceiling rejects most draws
        genome = space.genome({gene.name: rng.choice(list(gene.values)) for gene in space.genes})
        cost = cost_of(genome)
        if max_flops is None or cost.flops <= max_flops:
            values.append((_macs(cost), genome))
        if len(values) == SAMPLED_GENOMES:
            break
    return sorted(values, key=lambda item: item[0])


def _disk(recipe, stages, params, sizes) -> Dict[str, int]:
    """Bytes on disk at the end of the run, by kind (float32 weights; Adam or momentum slots in checkpoints)."""
    weights = {name: 4 * count for name, count in params.items()}
    disk = {"tuner files (~20 KB per trial)": 20_000 * recipe.search.trials * (2 if recipe.final.random_search else 1)}
    if recipe.evaluation.mode == "inherit":
        disk["widest network"] = weights["costliest"]
    if recipe.evaluation.mode == "oneshot":
        disk["supernet checkpoint (weights + optimizer slots)"] = 3 * weights["costliest"]
    elif recipe.search.keep_candidates:
        disk[f"kept candidate weights ({recipe.search.keep_candidates})"] = \
            recipe.search.keep_candidates * weights["reference"]
    study = next(stage for stage in stages if stage["name"] == "study")
    disk["study models (+ one checkpoint in flight)"] = (study["trainings"] + 3) * weights["reference"]
    if sizes["imagenet_format"]:  # search_val is stored; search_train only when it is a per-class subset
        stored = sizes["num_search_val"] + (sizes["num_search_train"] if recipe.data.search_train_per_class else 0)
        disk["ImageNet search subsets (encoded shards)"] = stored * IMAGENET_JPEG_BYTES
    if recipe.evaluation.mode == "oneshot" and recipe.evaluation.recalibration_batches:
        disk["recalibration batches (uint8)"] = _recalibration_bytes(recipe, sizes)
    return disk


def _recalibration_bytes(recipe, sizes) -> int:
    """The one-shot evaluator's recalibration batches: drawn once, saved and held as uint8 pixels (every source
    of the recipes is uint8; `lqsearch.pixels.exact_uint8`), turned into float one batch at a time."""
    height, width, channels = sizes["input_shape"]
    return recipe.evaluation.recalibration_batches * recipe.data.batch_size * height * width * channels


def _ram(recipe, sizes, params, timing) -> Dict[str, int]:
    """Host RAM at the peak: the runtime, in-memory images, the largest model and its training state."""
    height, width, channels = sizes["input_shape"]
    ram = {"TensorFlow runtime": RUNTIME_BYTES}
    if not sizes["imagenet_format"]:  # in-memory sources: train, its search copies and test, as uint8
        images = sizes["num_train"] + sizes["num_search_train"] + sizes["num_search_val"] + sizes["num_test"]
        ram["images in memory (uint8)"] = images * height * width * channels
    else:
        ram["shuffle buffers (encoded JPEGs)"] = 10_000 * IMAGENET_JPEG_BYTES
    if recipe.evaluation.mode == "oneshot" and recipe.evaluation.recalibration_batches:
        ram["recalibration batches (uint8, held for the search; one float32 batch in use)"] = (
            _recalibration_bytes(recipe, sizes) + recipe.data.batch_size * height * width * channels * 4)
    ram["prefetched training batches (uint8, ~2 in flight)"] = 2 * recipe.data.batch_size * height * width * channels
    ram["largest model (weights, gradients, optimizer slots)"] = 4 * 4 * params["costliest"]
    if timing is not None and timing.activation_bytes:
        what = "activations at the recipe's batch (layer outputs and their gradients; on a GPU, device memory)"
        ram[what] = int(timing.activation_bytes)
    return ram


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def format_plan(plan: Dict[str, Any]) -> str:
    """The plan as text: a table of stages, disk, RAM, the projected wall time and what it was probed on."""
    data = plan["data"]
    lines = [f"Plan for recipe {plan['recipe']!r}: {plan['space']} on {plan['dataset']} "
             f"({'x'.join(map(str, data['input_shape']))}, {data['num_classes']} classes; train {data['num_train']:,}, "
             f"search-train {data['num_search_train']:,}, search-val {data['num_search_val']:,}, "
             f"test {data['num_test']:,})", ""]
    header = f"{'stage':18s} {'trainings':>9s} {'evals':>6s} {'epochs':>6s} {'images':>14s} {'steps':>11s} " \
             f"{'projected':>12s}  what"
    lines += [header, "-" * len(header)]
    for stage in plan["stages"]:
        epochs = "-" if stage["epochs"] is None else str(stage["epochs"])
        lines.append(f"{stage['name']:18s} {stage['trainings']:>9,} {stage['evaluations']:>6,} {epochs:>6s} "
                     f"{stage['images']:>14,} {stage['steps']:>11,} {_duration(stage['seconds']):>12s}  "
                     f"{stage['what']}")
    lines.append("")
    lines.append("Disk: " + ", ".join(f"{k} {_bytes(v)}" for k, v in plan["disk_bytes"].items())
                 + f"; total {_bytes(sum(plan['disk_bytes'].values()))}")
    lines.append("Host RAM (peak): " + ", ".join(f"{k} {_bytes(v)}" for k, v in plan["ram_bytes"].items())
                 + f"; total {_bytes(sum(plan['ram_bytes'].values()))}")
    probe = plan["probe"]
    if probe is None:
        lines.append("Wall time: not projected (no probe).")
    else:
        decode = f", JPEG decode {probe['jpeg_decode_s'] * 1e3:.1f} ms per image" if probe["jpeg_decode_s"] else ""
        pipeline = f", input pipeline {probe['pipeline_ms_per_image']:.3f} ms per image" \
            if probe["pipeline_ms_per_image"] else ""
        lines.append(f"Wall time: {_duration(plan['seconds'])} projected, not measured: from {probe['seconds']} s of "
                     f"probing on this {probe['device']}, {', '.join(probe['genomes'])} genome(s) at batch "
                     f"{probe['batch']} on {probe['image']} images (step times scaled to the recipe's batch)"
                     f"{decode}{pipeline}.")
    if plan["paper"]:
        lines.append(f"The paper: {plan['paper']}.")
    lines.append("Nothing was trained for real and nothing was written.")
    return "\n".join(lines)
