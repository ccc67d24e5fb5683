"""Benchmark: the ImageNet path at scale (design.md §9), measured on real-format synthetic ImageNet in one run.

Every figure is a ratio of two measurements taken in this run, on ILSVRC2012 tar files
written by `lqsearch.testing.imagenet_files` and prepared by tfds' own `imagenet2012` builder.

1. Reads per pass. The same search_val (1 image per class, 1,000 images) with 3 and then
   30 train images per class (3,000 and 30,000 train images): the one-shot evaluator
   (`lqsearch.search.evaluation`, as the tuner calls it; MobileNet M3 at width 1/16, 32x32,
   bireal, batch 512, Phan et al.'s split: search_train is all the rest) scores the same
   random candidates; its BatchNorm recalibration batches are drawn once per run (3 full
   batches in both). Goals: seconds per candidate at 30/class / at 3/class <= 1.3 (a pass
   reads only its own images, whatever the train set's size), and images decoded per
   candidate / images it uses <= 1.1. Decodes are counted by wrapping the tf.image / tf.io
   decode ops while the pipelines are built, each with a `tf.Variable` it increments
   (the counted pipelines are separate from the timed ones).
2. Pipeline throughput at 224 px. Tar files with JPEGs of 300-500 px a side (2 per class),
   all 2,000 train images (`train_limit`; smoke: 64): images/s of the training
   pipeline as `lqsearch.training.fit` consumes it (`dataset.seeded("train", seed)`: shuffle of
   encoded bytes, fused decode-and-crop, resize, flip, batch 256 of uint8 pixels, converted on
   the device) against images/s of decoding the same files whole (`tf.io.decode_jpeg`, the same
   `tf.data` options and parallelism, nothing else): after a warm-up pass of each, 5 rounds
   alternate one pass of each (the machine's load changes from second to second); the median of
   the rounds' ratios. The same training pipeline with tf.data's model-based autotuning on (TF's
   default, what the pipelines used before `lqsearch.data.pipelines.pipeline_options` turned it
   off) runs in the same rounds, for comparison.
   Goal: >= 0.8, at steady state: images/s from the first batch's arrival to the end of the pass,
   for both pipelines. A pass here is 2,000 images, and its start (the shuffle buffer filled with
   the whole split, then the first batch) weighs a large share of it; an ImageNet epoch is 1.28M
   images, where it does not. The start (seconds to the first batch) and the whole-pass ratio are
   printed beside it, and so is the ratio of the pass with float batches made on the host
   (`dataset.train`, what a pipeline gave before the conversion moved to the device).
3. Memory. Tiny candidates through the evaluator (scratch: VGG-small width 1/16, 1 step of
   training and the search_val pass; oneshot: MobileNet M3 width 1/16), as the tuner runs
   them, on the synthetic ImageNet of part 1 (3/class): resident set size after 200
   candidates / after 20. Goal: <= 1.1.

Run (about 15-25 minutes on 2 busy CPU cores):

    python bench/bench_imagenet_path.py [--only reads,throughput,rss] [--candidates 8] [--rss-candidates 200]

`--smoke` runs every part in a few minutes with tiny counts, to check that the script still runs
(tests/test_bench.py); its figures mean nothing.
"""
import argparse
import contextlib
import dataclasses
import gc
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import psutil  # noqa: E402  (a dependency of tensorflow-datasets)
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

import lqsearch.spaces  # noqa: E402
from lqsearch.data import load_dataset  # noqa: E402
from lqsearch.data.pipelines import pipeline_options, pipeline_threads  # noqa: E402
from lqsearch.search.evaluation import EvaluationConfig, make_evaluator  # noqa: E402
from lqsearch.testing.bench_args import selected_parts  # noqa: E402
from lqsearch.testing.imagenet_files import prepare_synthetic_imagenet  # noqa: E402
from lqsearch.training import preset  # noqa: E402

PARTS = ("reads", "throughput", "rss")
PHAN_BATCH = 512  # phan_imagenet's batch
SHEN_BATCH = 256  # shen_imagenet's batch
RECALIBRATION_BATCHES = 3  # full batches of 512 in both train sizes of part 1
DECODES = ("decode_jpeg", "decode_image", "decode_and_crop_jpeg")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each part measures: the real figures (`FULL`) or a check that the script runs (`SMOKE`)."""
    per_class: tuple = (3, 30)  # part 1: train images per class, small then large
    supernet_steps: int = 4  # part 1 and 3 (oneshot): the figures do not depend on training
    throughput_per_class: int = 2  # part 2
    throughput_images: int = 2000  # part 2: train_limit (all 2 x 1000 images)
    throughput_rounds: int = 5  # part 2: alternated passes of each pipeline
    throughput_sides: tuple = (300, 500)  # part 2: JPEG sides, pixels
    rss_at: tuple = (20, 200)  # part 3: RSS after this many candidates, first and last
    count: int | None = None  # candidates of part 1: None keeps the command line's


FULL = Sizes()
SMOKE = Sizes(per_class=(3, 4), supernet_steps=1, throughput_images=64, throughput_rounds=1, throughput_sides=(24, 48),
              rss_at=(2, 4), count=2)


class DecodeCount:
    """Counts decoded images: the decode ops of tf.image and tf.io, wrapped while pipelines are built.

    Each wrapped op increments a `tf.Variable` once per call (one call per image); pipelines
    built outside `patched()` use the plain ops.
    """

    def __init__(self):
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def count(self) -> int:
        return int(self.variable.numpy())

    def _wrap(self, decode):
        def counted(*args, **kwargs):
            image = decode(*args, **kwargs)
            with tf.control_dependencies([self.variable.assign_add(1)]):
                return tf.identity(image)
        return counted

    @contextlib.contextmanager
    def patched(self):
        saved = [(module, name, getattr(module, name)) for module in (tf.image, tf.io) for name in DECODES
                 if hasattr(module, name)]
        for module, name, op in saved:
            setattr(module, name, self._wrap(op))
        try:
            yield self
        finally:
            for module, name, op in saved:
                setattr(module, name, op)


def synthetic_imagenet(root: Path, per_class: int, **sides):
    """(data_dir, seconds): ILSVRC2012 tars with `per_class` JPEGs per synset, prepared by tfds' builder."""
    tfds.disable_progress_bar()
    began = time.perf_counter()
    tag = f"{per_class}_{sides.get('max_side', 48)}"
    prepare_synthetic_imagenet(root / f"data_{tag}", root / f"manual_{tag}", per_class=per_class, val_images=100,
                               **sides)
    return root / f"data_{tag}", time.perf_counter() - began


def random_genomes(space, count, seed=1):
    rng = random.Random(seed)
    return [{gene.name: rng.choice(gene.values) for gene in space.genes} for _ in range(count)]


def _oneshot_evaluator(dataset, run_dir, supernet_steps):
    space = lqsearch.spaces.get("mobilenet_m3", width_multiplier=0.0625)
    bound = space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="bireal")
    config = EvaluationConfig(mode="oneshot", supernet_steps=supernet_steps,
                              recalibration_batches=RECALIBRATION_BATCHES)
    return space, make_evaluator(bound, dataset, config, run_dir=run_dir)


def _phan_data(data_dir):
    return load_dataset("imagenet2012", data_dir=data_dir, batch_size=PHAN_BATCH, image_size=32, search_val_per_class=1)


def reads_at(root, per_class, candidates, sizes):
    """Seconds per candidate (median), decodes per candidate, images used per candidate, train size."""
    data_dir, prepared = synthetic_imagenet(root, per_class)
    dataset = _phan_data(data_dir)
    run_dir = root / f"reads_{per_class}"
    space, evaluator = _oneshot_evaluator(dataset, run_dir, sizes.supernet_steps)
    evaluator.prepare()
    genomes = random_genomes(space, candidates)
    evaluator.evaluate(space.uniform(1))  # traces once per run
    seconds = []
    for genome in genomes:
        began = time.perf_counter()
        evaluator.evaluate(genome)
        seconds.append(time.perf_counter() - began)
    decodes = DecodeCount()
    with decodes.patched():
        counted = _phan_data(data_dir)
    _, counting = _oneshot_evaluator(counted, run_dir, sizes.supernet_steps)
    counting.prepare()  # loads the supernet; draws its recalibration batches (decoded once, not per candidate)
    before = decodes.count
    for genome in genomes:
        counting.evaluate(genome)
    per_candidate = (decodes.count - before) / len(genomes)
    print(f"{per_class}/class: {dataset.num_train} train, {dataset.num_search_train} search_train, "
          f"{dataset.num_search_val} search_val (written and prepared in {prepared:.0f} s); one-shot per candidate: "
          f"{statistics.median(seconds):.3f} s (median of {len(seconds)}: "
          f"{', '.join(f'{s:.3f}' for s in seconds)}); decodes per candidate {per_candidate:.0f}", flush=True)
    return statistics.median(seconds), per_candidate, dataset.num_search_val


def bench_reads(root, candidates, sizes=FULL):
    small, large = sizes.per_class
    print(f"\n== 1. reads per pass: search_val 1/class, train {small} then {large}/class; one-shot M3 width 1/16, "
          f"32x32, batch {PHAN_BATCH}, recalibration {RECALIBRATION_BATCHES} batches drawn once; "
          f"{candidates} candidates")
    figures = {per_class: reads_at(root, per_class, candidates, sizes) for per_class in (small, large)}
    print("| figure | goal | measured |\n|---|---|---|")
    print(f"| one-shot s per candidate, {large}/class / {small}/class | <= 1.3 | "
          f"{figures[large][0] / figures[small][0]:.2f} |")
    for per_class in (small, large):
        seconds, decodes, used = figures[per_class]
        print(f"| decodes per candidate / images used ({per_class}/class) | <= 1.1 | {decodes / used:.2f} |")


def _seconds_per_pass(pipeline):
    return _timed_pass(pipeline)[0]


def _timed_pass(pipeline):
    """(seconds for the whole pass, seconds to its first batch, images after the first batch)."""
    began = time.perf_counter()
    first, images = None, 0
    for batch in pipeline:
        if first is None:
            first = time.perf_counter() - began
        else:
            images += int(tf.shape(batch[0])[0])
    return time.perf_counter() - began, first, images


def _rates(pipeline, total):
    """(whole-pass images/s, steady images/s after the first batch, seconds to the first batch); a pass of one
    batch (--smoke) has no steady part: the whole pass stands for it."""
    seconds, first, after = _timed_pass(pipeline)
    return total / seconds, after / max(seconds - first, 1e-9) if after else total / seconds, first


def bench_throughput(root, sizes=FULL):
    limit = sizes.throughput_images
    low, high = sizes.throughput_sides
    print(f"\n== 2. pipeline throughput at 224 px: JPEGs of {low}-{high} px, {sizes.throughput_per_class}/class, the "
          f"first {limit} train images; batch {SHEN_BATCH}; {os.cpu_count()} CPUs")
    data_dir, prepared = synthetic_imagenet(root, sizes.throughput_per_class, min_side=low, max_side=high)
    dataset = load_dataset("imagenet2012", data_dir=data_dir, batch_size=SHEN_BATCH, train_limit=limit,
                           search_val_per_class=1)
    builder = tfds.builder("imagenet2012", data_dir=str(data_dir))
    files = builder.as_dataset(split="train", shuffle_files=False, as_supervised=True,
                               decoders={"image": tfds.decode.SkipDecoding()}).take(limit)
    size = sum(len(image) for image, _ in files.as_numpy_iterator())
    decode_only = files.map(lambda image, label: (tf.shape(tf.io.decode_jpeg(image, channels=3)), label),
                            num_parallel_calls=pipeline_threads()).batch(SHEN_BATCH)
    decode_only = decode_only.with_options(pipeline_options(deterministic=False))
    print(f"{dataset.num_train} images, {size / dataset.num_train / 1024:.0f} KiB per JPEG on average "
          f"(written and prepared in {prepared:.0f} s)", flush=True)
    pixels = dataset.seeded("train", 0).passes(0, 1)  # what `training.fit` trains on: uint8 batches
    autotuned_options = tf.data.Options()
    autotuned_options.autotune.enabled = True
    autotuned = pixels.with_options(autotuned_options)
    for pipeline in (decode_only, pixels, dataset.train, autotuned):  # warm: traces, page cache, shuffle buffer
        _seconds_per_pass(pipeline)
    ratios = {"steady": [], "whole": [], "host steady": [], "host whole": [], "autotuned": []}
    starts = []
    for index in range(sizes.throughput_rounds):  # alternated, so that a change of the machine's load hits all
        decoded, decoded_steady, _ = _rates(decode_only, limit)
        trained, steady, start = _rates(pixels, dataset.num_train)
        host, host_steady, _ = _rates(dataset.train, dataset.num_train)
        _, tuned_steady, _ = _rates(autotuned, dataset.num_train)
        for key, value in (("steady", steady / decoded_steady), ("whole", trained / decoded),
                           ("host steady", host_steady / decoded_steady), ("host whole", host / decoded),
                           ("autotuned", tuned_steady / decoded_steady)):
            ratios[key].append(value)
        starts.append(start)
        print(f"round {index + 1}: decode only {decoded_steady:.0f} images/s after its first batch; training "
              f"pipeline {steady:.0f} (ratio {ratios['steady'][-1]:.2f}; first batch after {start:.2f} s; whole pass "
              f"ratio {ratios['whole'][-1]:.2f}); float batches made on the host {host_steady:.0f} (ratio "
              f"{ratios['host steady'][-1]:.2f}); autotuned {tuned_steady:.0f} (ratio "
              f"{ratios['autotuned'][-1]:.2f})", flush=True)

    def cell(key):
        values = ratios[key]
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
    print(f"| figure (224 px; medians of {len(starts)} alternated rounds, range) | goal | measured |\n|---|---|---|")
    print(f"| training pipeline (uint8 batches) / decode-only images/s, after the first batch | >= 0.8 | "
          f"{cell('steady')} |")
    print(f"| the same over the whole pass (its start included) | - | {cell('whole')} |")
    print(f"| seconds to the training pipeline's first batch | - | {statistics.median(starts):.2f} "
          f"({min(starts):.2f}-{max(starts):.2f}) |")
    print(f"| float batches made on the host / decode-only, after the first batch; whole pass | - | "
          f"{cell('host steady')}; {cell('host whole')} |")
    print(f"| the training pipeline with tf.data autotuning on / decode-only, after the first batch | - | "
          f"{cell('autotuned')} |")


def _rss_mib():
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def rss_of(mode, dataset, run_dir, sizes):
    """RSS (MiB) after each of `sizes.rss_at` candidates of `mode`, and seconds per candidate."""
    if mode == "oneshot":
        space, evaluator = _oneshot_evaluator(dataset, run_dir, sizes.supernet_steps)
    else:
        space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
        bound = space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="dorefa")
        config = EvaluationConfig(mode="scratch", epochs=1,
                                  training=preset("shen_imagenet", schedule="cosine", steps_per_epoch=1,
                                                         batch_size=SHEN_BATCH))
        evaluator = make_evaluator(bound, dataset, config, run_dir=run_dir)
    evaluator.prepare()
    first, last = sizes.rss_at
    rss, began = {}, time.perf_counter()
    genomes = random_genomes(space, last, seed=2)
    for index, genome in enumerate(genomes, start=1):
        evaluator.evaluate(genome)
        if index == first or index == last or index % 50 == 0:
            rss[index] = _rss_mib()
            print(f"{mode}: {index} candidates, RSS {rss[index]:.0f} MiB", flush=True)
    return rss, (time.perf_counter() - began) / last


def bench_rss(root, sizes=FULL):
    first, last = sizes.rss_at
    print(f"\n== 3. memory: RSS after {last} tiny candidates / after {first}, through the evaluator; synthetic "
          f"ImageNet {sizes.per_class[0]}/class, 32x32")
    data_dir, _ = synthetic_imagenet(root, sizes.per_class[0])
    rows = []
    for mode in ("scratch", "oneshot"):
        dataset = load_dataset("imagenet2012", data_dir=data_dir, batch_size=SHEN_BATCH, image_size=32,
                               search_val_per_class=1, search_train_per_class=1)
        rss, seconds = rss_of(mode, dataset, root / f"rss_{mode}", sizes)
        rows.append((mode, rss[last] / rss[first], seconds))
    print("| figure | goal | measured |\n|---|---|---|")
    for mode, ratio, seconds in rows:
        print(f"| RSS after {last} / after {first} candidates ({mode}, {seconds:.2f} s each) | <= 1.1 | {ratio:.3f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts among {', '.join(PARTS)}")
    parser.add_argument("--candidates", type=int, default=8, help="timed candidates of part 1")
    parser.add_argument("--out", help="where the tar files and tfds data go (default: a new temporary directory)")
    parser.add_argument("--smoke", action="store_true", help="every part in minutes on tiny counts")
    args = parser.parse_args()
    parts = selected_parts(parser, args.only, PARTS)
    sizes = SMOKE if args.smoke else FULL
    candidates = sizes.count or args.candidates
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_imagenet_path_"))
    began = time.perf_counter()
    if "reads" in parts:
        bench_reads(root, candidates, sizes)
    if "throughput" in parts:
        bench_throughput(root, sizes)
    if "rss" in parts:
        bench_rss(root, sizes)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
