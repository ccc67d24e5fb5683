"""Shared pytest set-up: quiet TensorFlow, no network, a fresh Keras session per test, timeouts, real-format data."""
import ipaddress
import os
import socket
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `import lqsearch` does: grouped-conv gradients on CPU

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from lqsearch.testing.cifar_files import prepare_synthetic_cifar10  # noqa: E402
from lqsearch.testing.imagenet_files import prepare_synthetic_imagenet  # noqa: E402


def _refuse_the_network():
    """Tests never touch the network: a Python socket connecting outside this machine raises (tfds downloads,
    HTTP), while loopback (the registry's local HTTP server, Keras Tuner's chief on 127.0.0.1) stays open.
    Every test that loads a tfds source also passes download=False (data.download=false in a recipe)."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def local(address):
        if not isinstance(address, tuple):
            return True  # a Unix socket
        host = str(address[0])
        try:
            return host == "localhost" or ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def guarded(method):
        def call(self, address, *args):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address):
                raise OSError(f"tests must not use the network (connection to {address!r} refused by conftest.py)")
            return method(self, address, *args)
        return call

    socket.socket.connect, socket.socket.connect_ex = guarded(connect), guarded(connect_ex)


_refuse_the_network()

#: Seconds a test may take, by kind: a fast test that hangs fails in a minute, not in ten.
TIMEOUTS = {"fast": 120, "slow": 300, "heavy": 1800}


@pytest.hookimpl(tryfirst=True)  # before -m deselects: a heavy test is a slow test too
def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("heavy") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("timeout") is None:
            kind = next((k for k in ("heavy", "slow") if item.get_closest_marker(k)), "fast")
            item.add_marker(pytest.mark.timeout(TIMEOUTS[kind]))


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    tf.keras.backend.clear_session()
    yield
    tf.keras.backend.clear_session()


@pytest.fixture(scope="session")
def synthetic_imagenet(tmp_path_factory):
    """ImageNet in the real ILSVRC2012 tar format, prepared once per session by tfds' own builder.

    3 JPEGs for each of the 1000 synsets (3,000 train images) and the first 100
    validation images; see `lqsearch.testing.imagenet_files`. Yields a namespace with
    `data_dir` and `manual_dir` (for `load_dataset("imagenet2012", data_dir=...)`),
    `per_class`, `val_images` and `prepare_seconds` (writing + tfds preparation).
    """
    root = tmp_path_factory.mktemp("synthetic_imagenet")
    tfds.disable_progress_bar()
    start = time.perf_counter()
    prepare_synthetic_imagenet(root / "data", root / "manual", per_class=3, val_images=100)
    return types.SimpleNamespace(data_dir=root / "data", manual_dir=root / "manual", per_class=3, val_images=100,
                                 prepare_seconds=time.perf_counter() - start)


@pytest.fixture(scope="session")
def synthetic_cifar10(tmp_path_factory):
    """CIFAR-10 in tfds' download format (`cifar-10-binary.tar.gz`), prepared once per session offline.

    10 train and 4 test images per class; see `lqsearch.testing.cifar_files`. Yields a
    namespace with `data_dir` (for `load_dataset("cifar10", data_dir=...)`) and `manual_dir`.
    """
    root = tmp_path_factory.mktemp("synthetic_cifar10")
    tfds.disable_progress_bar()
    prepare_synthetic_cifar10(root / "data", root / "manual", train_per_class=10, test_per_class=4)
    return types.SimpleNamespace(data_dir=root / "data", manual_dir=root / "manual")
