"""Benchmark: is lqsearch fast on a CPU? Every figure is a ratio of two timings taken in this one run.

1. Grouped convolutions. A training step (Keras `train_on_batch`, Adam) of MobileNet M1
   (Phan et al.) at width 0.25, input 32x32x1, batch 128, bireal, at groups 1, 4 and 16:
   lqsearch's native grouped convs (after) and the same network with Keras' stock
   `Conv2D` / larq `QuantConv2D`, which run grouped convs through XLA on CPU (before).
   Median of 12 steps after the first; the first step (tracing, XLA compiling) is
   printed too. Goal: grouped / groups=1 at most 1.0.
2. Analytic cost. `space.cost(genome)` against `lqsearch.cost.profile(space.build(genome))`
   on random genomes of every registered space (32x32x3, width 0.25); medians. The two
   costs must be equal. Goal: at least 100x faster.
3. One-shot evaluation on the full Fashion-MNIST (Debian files): `Supernet.evaluate` of a
   candidate (BatchNorm recalibration on K=10 batches of 128, then accuracy on the 3,000
   search-val images) against its limit, one forward pass of the candidate's extracted
   static model over the same recalibration batches (training mode) and search-val
   images (inference), traced and warm, data in memory. Goal: at most 2.0. The first
   evaluation (tracing) and the supernet's construction are printed too.
4. Quickstart (vgg_small width 0.125, bireal, the embedded Fashion-MNIST sample, batch 64,
   the recipe `quickstart`): seconds per candidate of the one-shot evaluator against the
   2-epoch scratch evaluator (`lqsearch.search.evaluation`), as the tuner calls them.
   Goal: at least 50x. Printed with the limit of item 3 measured there, which bounds what
   any one-shot evaluation can reach on this small split.
5. First training step of a new model (MobileNet M3 (Phan et al.) at width 0.25, groups 4,
   32x32x1, batch 128, bireal, `training.compile_model`): with the optimizer's slot
   variables created inside the first traced step, as Keras does (before: `tf.function`
   traces the step twice), against `training.build_optimizer` creating them first (after).
   Rounds alternate the two; medians.

Phan, Liu, Huynh, Savvides, Cheng, Shen, "Binarizing MobileNet via Evolution-based
Searching", CVPR 2020, arXiv:2005.06305.

Run (about 15-25 minutes on 2 busy CPU cores):

    python bench/bench_speed.py [--only grouped,cost,oneshot,quickstart,firststep] [--candidates 5]

`--smoke` runs every part in a few minutes on the embedded sample with the fewest steps and
candidates, to check that the script still runs (tests/test_bench.py); its figures mean nothing.
"""
import argparse
import dataclasses
import os
import random
import statistics
import tempfile
import time
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `import lqsearch` does: native grouped-conv gradients

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import lqsearch.spaces  # noqa: E402
from lqsearch import cost, training  # noqa: E402
from lqsearch.data import load_dataset  # noqa: E402
from lqsearch.search.evaluation import EvaluationConfig, make_evaluator  # noqa: E402
from lqsearch.spaces.layers import GROUPED_TYPES, native_grouped_gradients  # noqa: E402
from lqsearch.supernet import Supernet  # noqa: E402
from lqsearch.testing.bench_args import selected_parts  # noqa: E402

STEPS = 12
RECALIBRATION_BATCHES = 10


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each part measures: the real figures (`FULL`) or a check that the script runs (`SMOKE`)."""
    steps: int = STEPS  # timed training steps per group count (part 1)
    group_counts: tuple = (1, 4, 16)  # part 1
    supernet_steps: int = 20  # parts 3 and 4
    recalibration: int = RECALIBRATION_BATCHES  # parts 3 and 4
    tiny_data: bool = False  # parts 3 and 4: 200 images of the embedded sample
    count: Optional[int] = None  # candidates, cost samples, rounds: None keeps the command line's


FULL = Sizes()
SMOKE = Sizes(steps=1, group_counts=(1, 4), supernet_steps=2, recalibration=1, tiny_data=True, count=1)
TINY = {"train_limit": 200, "test_limit": 20}
PARTS = ("grouped", "cost", "oneshot", "quickstart", "firststep")


def _median_ms(seconds):
    return 1000 * statistics.median(seconds)


def _row(figure, goal, before, after):
    print(f"| {figure} | {goal} | {before} | {after} |", flush=True)


def _stock(model):
    """The same model with Keras' / larq's own conv classes (their XLA path for grouped convs)."""
    def clone(layer):
        return GROUPED_TYPES.get(type(layer), type(layer)).from_config(layer.get_config())

    return tf.keras.models.clone_model(model, clone_function=clone)


def step_times(space, groups, *, stock, steps=STEPS):
    """(first step s, median of the next `steps` steps s) of Keras training at `groups`."""
    tf.keras.backend.clear_session()
    model = space.build(space.uniform(groups), input_shape=(32, 32, 1), num_classes=10, quantizer="bireal")
    if stock:
        model = _stock(model)
    model.compile(tf.keras.optimizers.Adam(1e-3), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    images, labels = rng.random((128, 32, 32, 1), dtype=np.float32), rng.integers(0, 10, 128)
    times = []
    for _ in range(steps + 1):
        began = time.perf_counter()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - began)
    return times[0], statistics.median(times[1:])


def bench_grouped(sizes=FULL):
    group_counts, steps = sizes.group_counts, sizes.steps
    print(f"\n== 1. grouped convs: M1 width 0.25, 32x32x1, batch 128, bireal; native grouped-conv gradients: "
          f"{native_grouped_gradients()}")
    space = lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.25)
    times = {(groups, stock): step_times(space, groups, stock=stock, steps=steps)
             for stock in (False, True) for groups in group_counts}
    print("| groups | step before (Keras XLA) | step after (native) | first step before | first step after |")
    print("|---|---|---|---|---|")
    for groups in group_counts:
        before, after = times[(groups, True)], times[(groups, False)]
        print(f"| {groups} | {1000 * before[1]:.0f} ms | {1000 * after[1]:.0f} ms | {before[0]:.1f} s "
              f"| {after[0]:.1f} s |")
    print("| figure | goal | before | after |\n|---|---|---|---|")
    for groups in group_counts[1:]:
        _row(f"step at groups={groups} / groups=1", "<= 1.0", f"{times[(groups, True)][1] / times[(1, True)][1]:.2f}",
             f"{times[(groups, False)][1] / times[(1, False)][1]:.2f}")
    return times


def bench_cost(samples):
    print(f"\n== 2. analytic cost against build + profile, 32x32x3, width 0.25, {samples} random genomes per space")
    rng = random.Random(0)
    analytic, built = [], []
    for name in lqsearch.spaces.list_spaces():
        space = lqsearch.spaces.get(name, width_multiplier=0.25)
        arguments = {"input_shape": (32, 32, 3), "num_classes": 10}
        for _ in range(samples):
            genome = {gene.name: rng.choice(gene.values) for gene in space.genes}
            tf.keras.backend.clear_session()
            began = time.perf_counter()
            result = space.cost(genome, **arguments)
            analytic.append(time.perf_counter() - began)
            began = time.perf_counter()
            profiled = cost.profile(space.build(genome, **arguments))
            built.append(time.perf_counter() - began)
            if profiled != result:
                raise SystemExit(f"{name} {genome}: analytic {result} != profiled {profiled}")
    print(f"analytic {_median_ms(analytic):.2f} ms, build + profile {_median_ms(built):.0f} ms (medians, all equal)")
    print("| figure | goal | before | after |\n|---|---|---|---|")
    _row("build + profile / analytic cost", ">= 100", "-",
         f"{statistics.median(built) / statistics.median(analytic):.0f}")


def _static_limit(supernet, genome, recalibration, validation):
    """Seconds of one forward pass of the extracted static model: recalibration batches in training mode,
    validation images in inference; traced and warmed up first."""
    model = supernet.extract(genome)

    @tf.autograph.experimental.do_not_convert
    def forward(images, training):
        return model(images, training=training)

    infer = tf.function(lambda images: forward(images, False))
    train = tf.function(lambda images: forward(images, True))
    train(recalibration[0][0])
    infer(validation[0][0])
    began = time.perf_counter()
    for images, _ in recalibration:
        train(images).numpy()
    for images, _ in validation:
        infer(images).numpy()
    return time.perf_counter() - began


def oneshot_against_limit(space, dataset, candidates, *, quantizer=None, supernet_steps=FULL.supernet_steps,
                          recalibration=FULL.recalibration):
    """{"oneshot", "limit", "first", "init"}: median seconds per candidate of `Supernet.evaluate` and its limit."""
    tf.keras.backend.clear_session()
    began = time.perf_counter()
    supernet = Supernet(space, input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer=quantizer)
    init = time.perf_counter() - began
    supernet.train(dataset.search_train, steps=supernet_steps, checkpoint_dir=tempfile.mkdtemp(prefix="bench_speed_"))
    recalibration = [(tf.constant(x), y) for x, y in dataset.take_batches("search_train", recalibration)]
    validation = [(tf.constant(x), y) for x, y in dataset.take_batches("search_val", 10**6)]
    rng = random.Random(1)
    genomes = [supernet.sample_genome(rng) for _ in range(candidates)]
    began = time.perf_counter()
    supernet.evaluate(space.uniform(1), dataset.search_val, recalibration_data=recalibration)
    first = time.perf_counter() - began
    oneshot, limit = [], []
    for genome in genomes:
        began = time.perf_counter()
        supernet.evaluate(genome, dataset.search_val, recalibration_data=recalibration)
        oneshot.append(time.perf_counter() - began)
        limit.append(_static_limit(supernet, genome, recalibration, validation))
    ratios = [a / b for a, b in zip(oneshot, limit)]
    return {"oneshot": statistics.median(oneshot), "limit": statistics.median(limit),
            "ratio": statistics.median(ratios),
            "first": first, "init": init, "traces": supernet.tracing_counts()}


def bench_oneshot(candidates, sizes=FULL):
    dataset = (load_dataset("embedded", batch_size=16, search_val_per_class=2, **TINY) if sizes.tiny_data else
               load_dataset("fashion_mnist_local", batch_size=128, eval_batch_size=1000, search_val_per_class=300))
    recalibration, supernet_steps = sizes.recalibration, sizes.supernet_steps
    print(f"\n== 3. one-shot evaluation on {dataset.name} ({dataset.num_search_train} search-train, "
          f"{dataset.num_search_val} search-val), K={recalibration} recalibration batches of {dataset.batch_size}, "
          f"{candidates} random candidates")
    began = time.perf_counter()
    dataset.take_batches("search_train", recalibration)
    print(f"taking the recalibration batches from the shuffled pipeline: {time.perf_counter() - began:.2f} s "
          "(OneshotEvaluator draws them once per run, before the supernet trains)")
    print("| figure | goal | before | after |\n|---|---|---|---|")
    for name, options in (("vgg_small", {"width_multiplier": 0.125}), ("mobilenet_m1", {"width_multiplier": 0.25})):
        figures = oneshot_against_limit(lqsearch.spaces.get(name, **options), dataset, candidates,
                                        supernet_steps=supernet_steps, recalibration=recalibration)
        _row(f"{name} {options}: one-shot {figures['oneshot']:.2f} s / limit {figures['limit']:.2f} s per candidate "
             f"(supernet built in {figures['init']:.1f} s, first evaluation {figures['first']:.1f} s)", "<= 2.0", "-",
             f"{figures['ratio']:.2f}")
        if set(figures["traces"].values()) - {0, 1}:
            raise SystemExit(f"{name}: a function was traced more than once: {figures['traces']}")


def bench_quickstart(candidates, sizes=FULL):
    dataset = load_dataset("embedded", batch_size=64, search_fraction=0.2, **(TINY if sizes.tiny_data else {}))
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    print(f"\n== 4. quickstart: vgg_small width 0.125, bireal, embedded sample ({dataset.num_search_train} "
          f"search-train, {dataset.num_search_val} search-val), batch 64; {candidates} random candidates")
    run_dir = tempfile.mkdtemp(prefix="bench_speed_quickstart_")
    bound = space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="bireal")
    config = EvaluationConfig(mode="oneshot", supernet_steps=sizes.supernet_steps,
                              recalibration_batches=sizes.recalibration)
    oneshot = make_evaluator(bound, dataset, config, run_dir=run_dir)
    oneshot.prepare()
    scratch = make_evaluator(bound, dataset, EvaluationConfig(mode="scratch", epochs=2), run_dir=run_dir)
    rng = random.Random(2)
    genomes = [{gene.name: rng.choice(gene.values) for gene in space.genes} for _ in range(candidates)]
    oneshot.evaluate(space.uniform(1))  # traces once per run
    batches = dataset.take_batches("search_train", oneshot.config.recalibration_batches)
    timings = {"evaluator": [], "supernet": [], "scratch": [], "limit": [], "take": []}
    for genome in genomes:
        began = time.perf_counter()
        dataset.take_batches("search_train", oneshot.config.recalibration_batches)
        timings["take"].append(time.perf_counter() - began)
        began = time.perf_counter()
        oneshot.evaluate(genome)
        timings["evaluator"].append(time.perf_counter() - began)
        began = time.perf_counter()
        oneshot.supernet.evaluate(genome, dataset.search_val, recalibration_data=batches)
        timings["supernet"].append(time.perf_counter() - began)
        timings["limit"].append(_static_limit(oneshot.supernet, genome, [(tf.constant(x), y) for x, y in batches],
                                              [(tf.constant(x), y) for x,
                                               y in dataset.take_batches("search_val", 10**6)]))
        began = time.perf_counter()
        scratch.evaluate(genome)
        timings["scratch"].append(time.perf_counter() - began)
    median = {key: statistics.median(values) for key, values in timings.items()}
    print(f"per candidate (medians): scratch E=2 {median['scratch']:.2f} s; "
          f"one-shot evaluator {median['evaluator']:.3f} s "
          f"(it draws its recalibration batches once per run; drawing them takes {median['take']:.3f} s); "
          f"Supernet.evaluate with the batches taken once {median['supernet']:.3f} s; its limit (as in item 3) "
          f"{median['limit']:.3f} s")
    print("| figure | goal | before | after |\n|---|---|---|---|")
    _row("scratch / one-shot evaluator, per candidate", ">= 50", "12.9 (ae3d5e0, 2026-12-01)",
         f"{median['scratch'] / median['evaluator']:.1f}")
    _row("scratch / Supernet.evaluate (batches taken once)", ">= 50", "-",
         f"{median['scratch'] / median['supernet']:.1f}")
    _row("scratch / limit: the best any one-shot evaluation can reach here", "-", "-",
         f"{median['scratch'] / median['limit']:.1f}")


def first_step_seconds(space, *, prebuilt: bool) -> float:
    """Seconds of the first `train_on_batch` of a freshly built and compiled model."""
    tf.keras.backend.clear_session()
    model = space.build(space.uniform(4), input_shape=(32, 32, 1), num_classes=10, quantizer="bireal")
    config = training.preset("cpu", epochs=1)
    if prebuilt:
        training.compile_model(model, config, 10, 10)
    else:  # compile_model without its build_optimizer call
        model.compile(training.make_optimizer(config, 10),
                      tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    rng = np.random.default_rng(0)
    images, labels = rng.random((128, 32, 32, 1), dtype=np.float32), rng.integers(0, 10, 128)
    began = time.perf_counter()
    model.train_on_batch(images, labels)
    return time.perf_counter() - began


def bench_first_step(rounds):
    space = lqsearch.spaces.get("mobilenet_m3", width_multiplier=0.25)
    print(f"\n== 5. first training step: M3 width 0.25, groups 4, 32x32x1, batch 128, bireal; {rounds} rounds")
    times = {False: [], True: []}
    for index in range(rounds):
        for prebuilt in ((False, True) if index % 2 == 0 else (True, False)):
            times[prebuilt].append(first_step_seconds(space, prebuilt=prebuilt))
        print(f"round {index}: slots created in the step {times[False][-1]:.1f} s, built first {times[True][-1]:.1f} s")
    before, after = statistics.median(times[False]), statistics.median(times[True])
    print("| figure | goal | before | after |\n|---|---|---|---|")
    _row("first training step of a new model (median)", "cut where the cause is ours",
         f"{before:.1f} s", f"{after:.1f} s ({after / before:.2f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts among {', '.join(PARTS)}")
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--cost-samples", type=int, default=4)
    parser.add_argument("--quickstart-candidates", type=int, default=3)
    parser.add_argument("--first-step-rounds", type=int, default=4)
    parser.add_argument("--smoke", action="store_true",
                        help="every part in minutes, on tiny data, one candidate/sample/round (overrides those counts)")
    args = parser.parse_args()
    parts = selected_parts(parser, args.only, PARTS)
    sizes = SMOKE if args.smoke else FULL
    if sizes.count is not None:
        args.candidates = args.cost_samples = args.quickstart_candidates = args.first_step_rounds = sizes.count
    began = time.perf_counter()
    if "grouped" in parts:
        bench_grouped(sizes)
    if "cost" in parts:
        bench_cost(args.cost_samples)
    if "oneshot" in parts:
        bench_oneshot(args.candidates, sizes)
    if "quickstart" in parts:
        bench_quickstart(args.quickstart_candidates, sizes)
    if "firststep" in parts:
        bench_first_step(args.first_step_rounds)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
