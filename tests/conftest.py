"""Shared pytest set-up: quiet TensorFlow, a fresh Keras session per test, a timeout per kind of test."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `import lqsearch` does: grouped-conv gradients on CPU

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

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
