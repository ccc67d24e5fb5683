"""Evaluating many candidates in one process does not keep their graphs (TensorFlow's gradient registry)."""
import pytest
from tensorflow.python.framework import ops

import lqsearch.spaces
from lqsearch.data import load_dataset
from lqsearch.search.evaluation import EvaluationConfig, make_evaluator
from lqsearch.training import preset


def _custom_gradients():
    return sum(1 for name in ops._gradient_registry._registry if name.startswith("CustomGradient"))


@pytest.mark.slow
def test_candidates_leave_no_custom_gradients_registered(tmp_path):
    # larq's quantizers use tf.custom_gradient, which registers one global gradient function per traced
    # use, holding its graph: before the fix every candidate left ~30 (about 15 MiB of graphs) behind.
    dataset = load_dataset("embedded", batch_size=32, train_limit=128, test_limit=32, search_fraction=0.25,
                           image_size=8)
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    bound = space.bind(input_shape=dataset.input_shape, num_classes=dataset.num_classes, quantizer="bireal")
    config = EvaluationConfig(mode="scratch", epochs=1, training=preset("cpu", steps_per_epoch=1))
    evaluator = make_evaluator(bound, dataset, config, run_dir=tmp_path, seed=1)
    before = _custom_gradients()
    for value in (1, 2):
        accuracy, model = evaluator.evaluate(space.uniform(value))
        assert model is not None and 0 <= accuracy <= 100
    assert _custom_gradients() == before
