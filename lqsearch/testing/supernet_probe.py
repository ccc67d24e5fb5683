"""A short supernet training (and a final training) under a named `tf.distribute` strategy, for the scale-out tests.

Run as `python -m lqsearch.testing.supernet_probe STRATEGY [--devices N] [--spaces plain tiny_grouped]
[--final]`; prints one JSON line: the strategy, its replicas, each space's supernet loss at every step
(sandwich rule with distillation: 3 sub-networks a step) and weights, and with `--final` the epoch losses
of a short `lqsearch.training.fit` of a net without BatchNorm. The CPU is split into N logical devices
before TensorFlow starts, so `mirrored` runs data-parallel on one machine; under `multi_worker` the
process reads `TF_CONFIG` (set by whoever starts it, before TensorFlow starts) and every worker prints
the same losses.

`plain` is a supernet without BatchNorm (a width and a groups gene): its training is the same on any number
of replicas. `tiny_grouped` (`lqsearch.testing.tiny_spaces`) has BatchNorm, whose batch statistics are
per replica.
"""
import argparse
import json
import sys
import tempfile


def plain_space():
    """A supernet space with no BatchNorm: float stem, one binary conv with width and groups genes, classifier."""
    from lqsearch.genome import Gene  # noqa: PLC0415 (after the devices are split)
    from lqsearch.spaces import _blocks  # noqa: PLC0415
    from lqsearch.spaces.base import SearchSpace  # noqa: PLC0415

    class PlainSpace(SearchSpace):
        name = "plain"
        default_input_shape = (16, 16, 3)
        default_quantizer = "ste"

        def _make_genes(self):
            return [Gene("conv2", (0.5, 1.0)), Gene("conv2_groups", (1, 2), kind="groups")]

        def _concrete(self, gene, value):
            return int(value) if gene.kind == "groups" else self.channels(16, value)

        def _build(self, genome, inputs, num_classes, preset):
            table = dict(self.layer_table(genome))
            x = _blocks.float_conv(inputs, 16, 3, strides=2, name="conv1")
            x = _blocks.binary_conv(x, table["conv2"], 3, groups=table["conv2_groups"], preset=preset, name="conv2")
            return _blocks.classifier(x, num_classes)

    return PlainSpace()


def weights_sum(model) -> float:
    """The sum of the absolute values of a model's weights (a fingerprint that survives float rounding)."""
    return float(sum(abs(w).sum(dtype="float64") for w in model.get_weights()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("strategy")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--spaces", nargs="+", choices=("plain", "tiny_grouped"), default=["plain"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--checkpoint-dir", help="keep the checkpoints in DIR/SPACE (default: a temporary directory)")
    parser.add_argument("--final", action="store_true", help="also a 2-epoch final training of a net without BN")
    args = parser.parse_args(argv)
    import tensorflow as tf  # noqa: PLC0415 (the devices must be split before anything else starts TensorFlow)

    cpu = tf.config.list_physical_devices("CPU")[0]
    if args.devices > 1:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)
    from lqsearch import training  # noqa: PLC0415
    from lqsearch.data import load_dataset  # noqa: PLC0415
    from lqsearch.supernet import Supernet  # noqa: PLC0415
    from lqsearch.testing.strategy_probe import _no_batchnorm  # noqa: PLC0415
    from lqsearch.testing.tiny_spaces import TinyGroupedSpace  # noqa: PLC0415

    strategy = training.get_strategy(args.strategy)
    training.seed_everything(1)
    data = load_dataset("embedded", batch_size=16, train_limit=200, test_limit=20, search_fraction=0.3, image_size=16)
    result = {"strategy": args.strategy, "replicas": strategy.num_replicas_in_sync, "supernet_losses": {},
              "weights_sum": {}}
    for name in args.spaces:
        tf.keras.utils.set_random_seed(3)
        space = plain_space() if name == "plain" else TinyGroupedSpace()
        supernet = Supernet(space, input_shape=data.input_shape, num_classes=data.num_classes, strategy=strategy)
        with tempfile.TemporaryDirectory() as directory:  # one per process: every worker writes its checkpoints
            stats = supernet.train(data.seeded("search_train", 2), steps=args.steps, sandwich=True, distill=True,
                                   checkpoint_dir=f"{args.checkpoint_dir}/{name}" if args.checkpoint_dir else directory,
                                   seed=5, log_every=1)
        result["supernet_losses"][name] = [loss for _, loss in stats["loss_history"]]
        result["weights_sum"][name] = weights_sum(supernet.model)
    if args.final:
        tf.keras.utils.set_random_seed(4)
        with strategy.scope():
            model = _no_batchnorm(data.input_shape, data.num_classes)
        config = training.preset("cpu", epochs=2, batch_size=16)
        history = training.fit(model, data.seeded("train", 1, config.batch_size), config, num_classes=data.num_classes)
        result["final_losses"] = history.history["loss"]
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
