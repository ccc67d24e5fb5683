"""Training throughput of an lqsearch-built VGG-small against the same network written with larq.

Both are trained in this process, alternating, on the same in-memory batches;
the script prints images/s per round, the medians and the ratio
(lqsearch / hand-written). lqsearch should add no more than 5% overhead.

Usage: python bench/bench_training_overhead.py [--rounds 5] [--steps 30] [--width 0.25]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import larq as lq  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import lqsearch.spaces  # noqa: E402
from lqsearch import quantizers, training  # noqa: E402


def hand_written_vgg_small(width: float, input_shape, num_classes: int) -> tf.keras.Model:
    """VGG-small with the dorefa preset, written directly with larq layers."""
    kwargs = dict(padding="same", use_bias=False, kernel_initializer="glorot_normal")
    inputs = tf.keras.Input(input_shape)
    x = inputs
    for i, (base, pool) in enumerate(((128, False), (128, True), (256, False), (256, True), (512, False), (512, True))):
        filters = max(1, int(round(base * width)))
        if i == 0:
            x = tf.keras.layers.Conv2D(filters, 3, kernel_initializer="he_normal", padding="same", use_bias=False)(x)
        else:
            x = lq.layers.QuantConv2D(
                filters, 3, input_quantizer=lq.quantizers.DoReFa(k_bit=1, mode="activations"),
                kernel_quantizer=quantizers.MagnitudeAwareSignUnclipped(), **kwargs)(x)
        if pool:
            x = tf.keras.layers.MaxPool2D(2)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes)(x))


def throughput(model, data, steps: int, batch_size: int) -> float:
    training.compile_model(model, training.preset("cpu", epochs=1), steps, 10)
    model.fit(data.take(3), epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(data.take(steps), epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size * 8, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, args.batch_size * 8)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size).repeat().prefetch(2)
    space = lqsearch.spaces.get("vgg_small", width_multiplier=args.width)
    ours, theirs = [], []
    for round_index in range(args.rounds):
        tf.keras.backend.clear_session()
        built = space.build(space.uniform(1), input_shape=(32, 32, 3), num_classes=10, quantizer="dorefa")
        hand = hand_written_vgg_small(args.width, (32, 32, 3), 10)
        assert built.count_params() == hand.count_params()
        pair = [(built, ours), (hand, theirs)]
        for model, results in (pair if round_index % 2 == 0 else pair[::-1]):
            results.append(throughput(model, data, args.steps, args.batch_size))
        print(f"round {round_index}: lqsearch {ours[-1]:.1f} img/s, hand-written larq {theirs[-1]:.1f} img/s")
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"median lqsearch: {statistics.median(ours):.1f} img/s; "
          f"median hand-written: {statistics.median(theirs):.1f} img/s")
    print(f"ratio lqsearch/hand-written: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f}%)")


if __name__ == "__main__":
    main()
