"""Binary-aware cost model: the papers' published figures, larq-zoo's Bi-Real Net, any model."""
import larq as lq
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import cost
from lqsearch.testing.paper_figures import ROWS, build_row


@pytest.mark.parametrize("row", ROWS, ids=[r[1] for r in ROWS])
def test_published_figures(row):
    *_, flops, memory_bits, tolerance = row
    result = cost.profile(build_row(row))
    assert result.flops == pytest.approx(flops, rel=tolerance)
    if memory_bits is not None:
        assert result.memory_bits == pytest.approx(memory_bits, rel=tolerance)


def test_larq_zoo_birealnet():
    import larq_zoo

    result = cost.profile(larq_zoo.literature.BiRealNet(weights=None))
    assert result.flops == pytest.approx(1.63e8, rel=0.02)
    assert result.binary_macs > 0 and result.fp_macs > 0


def test_flops_formula_on_a_hand_counted_model():
    inputs = tf.keras.Input((8, 8, 4))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)  # 8*8 * 3*3*4*8 fp MACs
    x = lq.layers.QuantConv2D(
        16, 1, use_bias=False, input_quantizer="ste_sign", kernel_quantizer="ste_sign"
    )(x)  # 8*8 * 8*16 binary MACs
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(2)(x)  # 16*2 fp MACs
    result = cost.profile(tf.keras.Model(inputs, x))
    assert result.binary_macs == 64 * 8 * 16
    assert result.fp_macs == 64 * 9 * 4 * 8 + 16 * 2
    assert result.flops == pytest.approx(result.binary_macs / 64 + result.fp_macs)
    assert result.memory_bits == 32 * (9 * 4 * 8 + 16 * 2 + 2) + 1 * (8 * 16)
    assert result.params == 9 * 4 * 8 + 8 * 16 + 16 * 2 + 2


def test_sequential_and_nested_models():
    inner = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    outer = tf.keras.Sequential([tf.keras.Input((5,)), tf.keras.layers.Dense(4), inner])
    assert cost.profile(outer).fp_macs == 5 * 4 + 4 * 3


def test_quantizer_without_precision_gives_a_clear_error():
    def sign_without_precision(x):
        return tf.sign(x)

    model = tf.keras.Sequential(
        [tf.keras.Input((4,)), lq.layers.QuantDense(2, kernel_quantizer=sign_without_precision)]
    )
    with pytest.raises(ValueError, match="set_precision"):
        cost.profile(model)


def test_unbuilt_model_is_refused():
    with pytest.raises(ValueError, match="not built"):
        cost.profile(tf.keras.Sequential([tf.keras.layers.Dense(2)]))


def test_cost_cache_profiles_each_genome_once(monkeypatch):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    cache = cost.CostCache(space, input_shape=(32, 32, 3), num_classes=10, quantizer="dorefa")
    calls = []
    real_profile = cost.profile
    monkeypatch.setattr(cost, "profile", lambda m: calls.append(m.name) or real_profile(m))
    first = cache([1, 1, 1, 1, 1, 1])
    assert cache({"conv1": 1, "conv2": 1, "conv3": 1, "conv4": 1, "conv5": 1, "conv6": 1}) == first
    assert cache([2, 1, 1, 1, 1, 1]).flops > first.flops
    assert len(calls) == 2
