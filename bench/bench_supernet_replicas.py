"""Supernet training under tf.distribute: host syncs per 100 steps, and the step time on 1 and 2 logical devices.

1. Host syncs: the eager-tensor reads (`float`, `numpy`, `bool`, `int`) of 100 supernet steps (checkpoint
   writing left out), with a log line every `--log-every` steps. Goal: at most one per log interval, plus
   two per training before its first step (the checkpoint's step count and the pipeline's length).
2. Step time: the supernet (sandwich rule, 3 sub-networks a step) trains `--steps` steps per round, in one
   process per device count (the CPU is split into logical devices before TensorFlow starts; 1 device
   runs the default strategy, 2 run `mirrored` on the same global batch). Median seconds per step over
   `--rounds` rounds after a warm-up round, and the ratio 2 devices / 1. On a CPU the logical devices
   share the same cores: the ratio shows the cost of splitting the batch and combining the gradients,
   not a speed-up (a GPU per replica would give that).

Usage: python bench/bench_supernet_replicas.py [--rounds 5] [--steps 20] [--batch-size 64] [--smoke]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _data(batch_size: int):
    from lqsearch.data import load_dataset  # noqa: PLC0415 (after the devices are split)

    return load_dataset("embedded", batch_size=batch_size, train_limit=1000, test_limit=20, search_fraction=0.3,
                        image_size=32)


def host_syncs(steps: int, log_every: int) -> dict:
    """Counts the host reads of `steps` supernet steps in this process (one device)."""
    from tensorflow.python.framework import ops  # noqa: PLC0415

    from lqsearch.supernet import Supernet  # noqa: PLC0415
    from lqsearch.testing.tiny_spaces import TinyGroupedSpace  # noqa: PLC0415

    data = _data(16)
    supernet = Supernet(TinyGroupedSpace(), input_shape=data.input_shape, num_classes=data.num_classes)
    reads, originals = [], {}
    names = ("__float__", "numpy", "__bool__", "__int__", "__index__")

    def counted(original):
        def read(self, *args):
            frames = traceback.extract_stack(limit=30)
            if not any("checkpoint" in f.filename or "saver" in f.filename for f in frames):
                reads.append(1)
            return original(self, *args)
        return read

    with tempfile.TemporaryDirectory() as directory:
        supernet.train(data.search_train, steps=2, checkpoint_dir=f"{directory}/warm", log_every=2)  # traces
        for name in names:
            originals[name] = getattr(ops._EagerTensorBase, name)
            setattr(ops._EagerTensorBase, name, counted(originals[name]))
        try:
            supernet.train(data.search_train, steps=steps, checkpoint_dir=f"{directory}/run", log_every=log_every,
                           checkpoint_every=10 * steps)
        finally:
            for name in names:
                setattr(ops._EagerTensorBase, name, originals[name])
    return {"steps": steps, "log_intervals": -(-steps // log_every), "reads": len(reads)}


def step_times(devices: int, rounds: int, steps: int, batch_size: int) -> list:
    """Seconds per step of each round (the first, which traces, left out), on `devices` logical devices."""
    import tensorflow as tf  # noqa: PLC0415

    if devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    from lqsearch import training  # noqa: PLC0415
    from lqsearch.supernet import Supernet  # noqa: PLC0415
    from lqsearch.supernet.training import standalone_optimizer  # noqa: PLC0415
    from lqsearch.testing.tiny_spaces import TinyGroupedSpace  # noqa: PLC0415

    strategy = training.get_strategy("mirrored" if devices > 1 else "default")
    data = _data(batch_size)
    supernet = Supernet(TinyGroupedSpace(), input_shape=data.input_shape, num_classes=data.num_classes,
                        strategy=strategy)
    with strategy.scope():
        optimizer = standalone_optimizer(1e-3, (rounds + 1) * steps)
    seconds = []
    with tempfile.TemporaryDirectory() as directory:
        for index in range(rounds + 1):
            stats = supernet.train(data.seeded("search_train", index), steps=steps, optimizer=optimizer,
                                   checkpoint_dir=f"{directory}/{index}", sandwich=True, log_every=steps,
                                   checkpoint_every=10 * steps)
            seconds.append(stats["seconds_per_step"])
    return seconds[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="smallest settings: 1 round of 3 steps, 10 steps counted")
    parser.add_argument("--devices", type=int, help=argparse.SUPPRESS)  # internal: one timing process
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.steps, args.log_every = 1, 3, 5
    if args.devices:
        print(json.dumps(step_times(args.devices, args.rounds, args.steps, args.batch_size)), flush=True)
        return 0

    counted = 10 if args.smoke else 100
    print(f"== 1. host syncs per {counted} supernet steps (log every {args.log_every})")
    syncs = host_syncs(counted, args.log_every)
    print(f"| steps | log intervals | host reads | goal (intervals + 2 before the first step) |\n|---|---|---|---|\n"
          f"| {syncs['steps']} | {syncs['log_intervals']} | {syncs['reads']} | <= {syncs['log_intervals'] + 2} |")

    print(f"\n== 2. supernet step time (sandwich, global batch {args.batch_size}, {args.steps} steps x "
          f"{args.rounds} rounds)")
    medians = {}
    for devices in (1, 2):
        done = subprocess.run([sys.executable, __file__, "--devices", str(devices), "--rounds", str(args.rounds),
                               "--steps", str(args.steps), "--batch-size", str(args.batch_size)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        rounds = json.loads(done.stdout.strip().splitlines()[-1])
        medians[devices] = statistics.median(rounds)
        print(f"{devices} device(s): s/step per round {', '.join(f'{s:.4f}' for s in rounds)}")
    print("| devices | strategy | median s/step | images/s |\n|---|---|---|---|")
    for devices, median in medians.items():
        name = "mirrored" if devices > 1 else "default"
        print(f"| {devices} | {name} | {median:.4f} | {args.batch_size / median:.0f} |")
    print(f"| step time 2 devices / 1 device | {medians[2] / medians[1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
