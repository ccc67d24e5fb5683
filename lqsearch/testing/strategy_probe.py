"""A short training under a named `tf.distribute` strategy on N logical CPU devices, for the scale-out tests.

Run as `python -m lqsearch.testing.strategy_probe STRATEGY [--devices N]`; prints one JSON line
with the strategy, its replicas, the loss of every epoch and the test accuracy. The CPU is split
into N logical devices before TensorFlow starts, so `mirrored` runs data-parallel on one machine.
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("strategy")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", choices=("vgg_small", "no_batchnorm"), default="vgg_small",
                        help="a binary VGG-small (BatchNorm per replica), or a binary net without BatchNorm")
    args = parser.parse_args(argv)
    import tensorflow as tf  # noqa: PLC0415 (the devices must be split before anything else starts TensorFlow)

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)
    import lqsearch  # noqa: PLC0415
    from lqsearch import training  # noqa: PLC0415
    from lqsearch.data import load_dataset  # noqa: PLC0415

    training.seed_everything(1)
    data = load_dataset("embedded", batch_size=32, train_limit=256, test_limit=64, search_fraction=0.25)
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.125)
    strategy = training.get_strategy(args.strategy)
    tf.keras.utils.set_random_seed(3)
    with strategy.scope():
        if args.model == "vgg_small":
            model = space.build(space.uniform(1), input_shape=data.input_shape, num_classes=data.num_classes,
                                quantizer="bireal")
        else:
            model = _no_batchnorm(data.input_shape, data.num_classes)
    config = training.preset("cpu", epochs=args.epochs, batch_size=32)
    history = training.fit(model, data.seeded("train", 1, config.batch_size), config, num_classes=data.num_classes)
    scores = training.evaluate(model, data.test, num_classes=data.num_classes)
    print(json.dumps({"strategy": args.strategy, "replicas": strategy.num_replicas_in_sync,
                      "losses": history.history["loss"], "test_accuracy": scores["accuracy"]}), flush=True)
    return 0


def _no_batchnorm(input_shape, num_classes):
    """A small binary net with no BatchNorm: its training is the same on any number of replicas."""
    import larq as lq  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Conv2D(16, 3, strides=2, use_bias=False)(inputs)
    x = lq.layers.QuantConv2D(32, 3, strides=2, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", use_bias=False)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(num_classes)(x))


if __name__ == "__main__":
    sys.exit(main())
