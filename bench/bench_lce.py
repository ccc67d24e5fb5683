"""LCE latency of a binary model and of its float twin (same genome, quantizer="float"), and their ratio.

Usage:
    python bench/bench_lce.py                         # Uniform-1x VGG-small, 32x32x3, bireal preset
    python bench/bench_lce.py --model-dir RUN/final   # any saved lqsearch artifact
    python bench/bench_lce.py --quantizer dorefa      # shows that dorefa gets no LCE speed-up

Single image, one thread, LCE interpreter with indirect BGEMM (x86), median of
--runs runs. Also times `LatencyCache` on one new genome (the per-genome cost of a
latency-aware search objective). About 30 s on 2 CPU cores.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import lqsearch.spaces  # noqa: E402
from lqsearch import quantizers  # noqa: E402
from lqsearch.deploy import artifact, lce  # noqa: E402


def build_models(args):
    """(label, binary model, float twin, space, genome, build kwargs)."""
    if args.model_dir:
        model, card = artifact.load(args.model_dir)
        space = lqsearch.spaces.from_config(card.space)
        build = dict(input_shape=card.input_shape, num_classes=card.num_classes, quantizer=card.quantizer)
        return f"{args.model_dir} ({card.space['name']}, {card.quantizer})", model, card.build(quantizer="float"), \
            space, card.genome, build
    space = lqsearch.spaces.get("vgg_small")
    genome = space.uniform(1)
    build = dict(input_shape=(32, 32, 3), num_classes=10, quantizer=args.quantizer)
    label = f"VGG-small Uniform-1x, 32x32x3, {args.quantizer}"
    return label, space.build(genome, **build), space.build(genome, **dict(build, quantizer="float")), \
        space, genome, build


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a saved lqsearch artifact (weights.h5 + model.json)")
    parser.add_argument("--quantizer", default="bireal", help="preset for the default VGG-small (default bireal)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per model (median; default 50)")
    args = parser.parse_args()

    label, binary, twin, space, genome, build = build_models(args)
    start = time.perf_counter()
    flatbuffer = lce.convert(binary)
    convert_s = time.perf_counter() - start
    report = lce.conversion_report(binary, flatbuffer)
    lce_binary = quantizers.get(build["quantizer"]).lce_binary
    latency = lce.compare_latency(binary, twin, lce_binary=lce_binary, runs=args.runs, binary_flatbuffer=flatbuffer)

    print(f"model:          {label}")
    print(f"conversion:     {convert_s:.1f} s (convert_keras_model); {report.summary()}")
    print(f"binary latency: {latency['binary_s'] * 1e3:.2f} ms")
    print(f"float latency:  {latency['float_s'] * 1e3:.2f} ms")
    print(f"float / binary: {latency['float_s'] / latency['binary_s']:.2f}x"
          + ("" if lce_binary else f"  (not a speed-up: {latency['note']})"))

    cache = lce.LatencyCache(space.bind(**build), runs=10)
    start = time.perf_counter()
    cache(genome)
    print(f"LatencyCache:   {time.perf_counter() - start:.2f} s for a new genome (build + fast convert + 10 runs)")


if __name__ == "__main__":
    main()
