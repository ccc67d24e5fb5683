"""Benchmark: one-shot (supernet) evaluation against scratch training, on real Fashion-MNIST.

Two spaces, on 28x28x1 Fashion-MNIST read from the Debian package's files
(/usr/share/datasets/fashion-mnist/, 60000 train images): vgg_small widths at
width_multiplier 0.125 (dorefa), and the MobileNet M3 group space at 0.25
(bireal). Side by side in one run, for each space:

1. Rank correlation. A supernet is trained (800 steps, Adam with linear decay;
   VGG: a random sub-genome every step, Phan et al.'s Algorithm 2; MobileNet: the
   sandwich rule with in-place distillation, which ranks better there, see
   --rule); 10 genomes spread log-uniformly over the FLOPs range are evaluated
   one-shot (BatchNorm recalibrated on K=5 train batches of 128, then
   search-val accuracy, no training) and trained stand-alone from scratch for
   E=2 epochs (Adam with linear decay). Kendall's tau between the two
   accuracies is printed, with and without the BatchNorm recalibration. To fit
   the time budget this part uses a stratified subset of the train file
   (--train-limit, default 12000: 9000 search-train and 3000 search-val images).
2. Cost. On the FULL train file (57000 search-train, 3000 search-val images),
   the one-shot evaluation of the cheapest, middle and costliest genome of the
   sample is timed (`Supernet.evaluate`: recalibrate on K batches + evaluate;
   and, for reference, the same through the extracted static model:
   `static=True`), and so is its scratch-mode evaluation (build, compile,
   2 epochs of Keras `fit`, evaluate): build, compile and the first
   --timed-steps steps are measured, the remaining steps of the two epochs
   count at the median measured step time, and the evaluation is measured.
   The ratio one-shot / scratch is printed per candidate and overall (total
   one-shot seconds / total scratch seconds). The supernet's training is a
   one-off cost per run, printed separately.

MobileNet candidates train stand-alone through a second supernet pinned to the
genome (`Supernet.train_standalone`: the computation of Keras training of the
static model, checked by the tests, with native grouped convs; Keras runs
grouped convs through XLA, which is several times slower per step on CPU). The
cost ratio is against the static Keras scratch mode; the ratio against the
rank experiment's own stand-alone runs (subset, fast trainer) is printed too.

Run (about 10-15 minutes on 2 busy CPU cores):

    python bench/bench_oneshot.py [--spaces vgg_small,mobilenet_m3] [--genomes 10] [--rule auto]
        [--supernet-steps 800] [--train-limit 12000] [--recalibration-batches 5] [--seed 0] [--out DIR]

Other spaces: mobilenet_m1, mobilenet_m2, resnet18. Results also land in
DIR/<space>/rank_correlation.json (DIR defaults to a new temporary directory).
"""
import argparse
import math
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

import lqsearch.spaces  # noqa: E402
from lqsearch.data import load_dataset  # noqa: E402
from lqsearch.supernet import Supernet, accuracy, measure_rank_correlation  # noqa: E402
from lqsearch.supernet.training import standalone_optimizer  # noqa: E402

#: space -> (options, Adam's initial learning rate of the supernet and of the 2-epoch stand-alone runs,
#: supernet training rule). The binary MobileNets need the higher rate to learn in 2 epochs, and
#: their supernet ranks better with the sandwich rule and in-place distillation.
SPACES = {
    "vgg_small": ({"width_multiplier": 0.125}, 1e-3, "random"),
    "mobilenet_m1": ({"width_multiplier": 0.25}, 1e-2, "sandwich-distill"),
    "mobilenet_m2": ({"width_multiplier": 0.25}, 1e-2, "sandwich-distill"),
    "mobilenet_m3": ({"width_multiplier": 0.25}, 1e-2, "sandwich-distill"),
    "resnet18": ({"width_multiplier": 0.125, "stem": "cifar"}, 1e-3, "random"),
}
RULES = ("random", "sandwich", "sandwich-distill")
SEARCH_VAL_PER_CLASS = 300
EPOCHS = 2


class _StepClock(tf.keras.callbacks.Callback):
    """Records the wall-clock time at the end of every training batch."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def scratch_mode_seconds(space, genome, dataset, *, epochs, timed_steps, learning_rate):
    """Seconds of the scratch mode on one candidate: build, compile, `epochs` epochs of `fit`, evaluate.

    Build, compile and the first `timed_steps` steps are measured; the remaining steps
    count at the median measured step time (the first 3 steps, which trace and compile,
    are excluded from the median); the evaluation on search_val is measured.
    """
    began = time.perf_counter()
    model = space.build(genome, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    steps = epochs * dataset.num_batches("search_train")
    model.compile(standalone_optimizer(learning_rate, steps),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clock = _StepClock()
    model.fit(dataset.search_train.take(timed_steps), epochs=1, verbose=0, callbacks=[clock])
    measured = time.perf_counter() - began
    step = statistics.median(b - a for a, b in zip(clock.times[2:], clock.times[3:]))
    remaining = steps - timed_steps
    began = time.perf_counter()
    accuracy(model, dataset.search_val)
    return measured + remaining * step + (time.perf_counter() - began)


def oneshot_seconds(supernet, genome, dataset, batches, *, static=False):
    """Measured seconds of `supernet.evaluate` (recalibrate on `batches`, evaluate on search_val).

    `static=True` times the extracted static model instead (build, copy weights, trace).
    """
    began = time.perf_counter()
    supernet.evaluate(genome, dataset.search_val, recalibration_data=batches,
                      recalibration_batches=len(batches), static=static)
    return time.perf_counter() - began


def run_space(name, args, full):
    """Runs the rank-correlation experiment and the cost comparison of one space; prints and returns the figures."""
    options, learning_rate, rule = SPACES[name]
    rule = args.rule if args.rule != "auto" else rule
    space = lqsearch.spaces.get(name, **options)
    rank_data = load_dataset("fashion_mnist_local", batch_size=128, eval_batch_size=1000, seed=args.seed,
                              train_limit=args.train_limit, search_val_per_class=SEARCH_VAL_PER_CLASS)
    supernet = Supernet(space, input_shape=rank_data.input_shape, num_classes=rank_data.num_classes)
    ranks = measure_rank_correlation(
        space, rank_data, out_dir=os.path.join(args.out, name), n=args.genomes, epochs_scratch=EPOCHS,
        supernet_steps=args.supernet_steps, recalibration_batches=args.recalibration_batches,
        seed=args.seed, supernet=supernet, learning_rate=learning_rate, sandwich=rule.startswith("sandwich"),
        distill=rule == "sandwich-distill", verbose=args.verbose,
    )
    training = ranks["supernet_training"]
    print(f"\n== {name} {options}, quantizer {supernet.quantizer}, input {rank_data.input_shape}, "
          f"Adam from {learning_rate:g} with linear decay")
    print(f"supernet: {args.supernet_steps} steps, rule {rule!r}, {training['seconds']:.0f} s this run "
          f"({'reused' if training['skipped'] else 'trained'})")
    print("  flops      one-shot  no-recal  scratch(E=2, subset)")
    for pair in sorted(ranks["pairs"], key=lambda p: p["flops"]):
        print(f"  {pair['flops']:9.3g}  {pair['oneshot_accuracy']:.4f}    "
              f"{pair['oneshot_accuracy_no_recalibration']:.4f}    {pair['scratch_accuracy']:.4f}")
    print(f"Kendall tau (one-shot vs stand-alone, n={len(ranks['pairs'])}): {ranks['kendall_tau']:.3f}; "
          f"without BN recalibration: {ranks['kendall_tau_no_recalibration']:.3f}; "
          f"mean accuracy gain of recalibration: {ranks['recalibration_gain']:+.1f} points")
    print(f"one-shot / stand-alone cost on the rank-correlation subset ({ranks['scratch_trainer']} trainer): "
          f"1/{1 / ranks['cost_ratio']:.0f}")
    ordered = sorted(ranks["pairs"], key=lambda p: p["flops"])
    timed = [ordered[0], ordered[len(ordered) // 2], ordered[-1]][: args.timed_genomes]
    batches = full.take_batches("search_train", args.recalibration_batches)
    costs = []
    for pair in timed:
        oneshot = oneshot_seconds(supernet, pair["genome"], full, batches)
        static = oneshot_seconds(supernet, pair["genome"], full, batches, static=True)
        scratch = scratch_mode_seconds(space, pair["genome"], full, epochs=EPOCHS, timed_steps=args.timed_steps,
                                       learning_rate=learning_rate)
        costs.append((oneshot, static, scratch))
        print(f"cost on the full train file, flops {pair['flops']:.3g}: one-shot {oneshot:.2f} s "
              f"(extracted static model: {static:.2f} s), scratch E=2 {scratch:.0f} s, "
              f"ratio 1/{scratch / oneshot:.0f} (static 1/{scratch / static:.0f})")
    if not costs:
        return {"tau": ranks["kendall_tau"], "tau_no_recalibration": ranks["kendall_tau_no_recalibration"],
                "cost_ratio": math.nan, "cost_ratio_static": math.nan}
    totals = [sum(c[i] for c in costs) for i in range(3)]
    print(f"one-shot / scratch cost ratio: 1/{totals[2] / totals[0]:.0f} overall, worst candidate "
          f"1/{min(c[2] / c[0] for c in costs):.0f}; through extracted static models 1/{totals[2] / totals[1]:.0f} "
          f"overall, worst 1/{min(c[2] / c[1] for c in costs):.0f} (target: at most 1/50)")
    return {"tau": ranks["kendall_tau"], "tau_no_recalibration": ranks["kendall_tau_no_recalibration"],
            "cost_ratio": totals[0] / totals[2], "cost_ratio_static": totals[1] / totals[2]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spaces", default="vgg_small,mobilenet_m3")
    parser.add_argument("--genomes", type=int, default=10)
    parser.add_argument("--supernet-steps", type=int, default=800)
    parser.add_argument("--train-limit", type=int, default=12000)
    parser.add_argument("--recalibration-batches", type=int, default=5)
    parser.add_argument("--timed-genomes", type=int, default=3)
    parser.add_argument("--timed-steps", type=int, default=20)
    parser.add_argument("--rule", default="auto", choices=("auto",) + RULES,
                        help="supernet training: one random sub-genome per step, the sandwich rule "
                             "(largest + smallest + random), or the sandwich with in-place distillation; "
                             "auto: the space's entry in SPACES")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()
    args.out = args.out or tempfile.mkdtemp(prefix="bench_oneshot_")
    began = time.perf_counter()
    full = load_dataset("fashion_mnist_local", batch_size=128, eval_batch_size=1000, seed=args.seed,
                        search_val_per_class=SEARCH_VAL_PER_CLASS)
    summary = {name: run_space(name, args, full) for name in args.spaces.split(",")}
    print("\n== summary")
    for name, figures in summary.items():
        print(f"{name}: tau {figures['tau']:.3f} (no recalibration {figures['tau_no_recalibration']:.3f}), "
              f"one-shot/scratch cost 1/{1 / figures['cost_ratio']:.0f} "
              f"(via extracted static models 1/{1 / figures['cost_ratio_static']:.0f})")
    print(f"total {time.perf_counter() - began:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
