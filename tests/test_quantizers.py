"""Quantizer presets: forward values and pseudo-gradients on small tensors, errors, serialization round-trips.

The gradients are checked with `tf.GradientTape` against the formulas of the papers the presets follow:
the straight-through estimator clipped to |x| <= 1 (Courbariaux et al., BinaryNet), the ApproxSign
gradient 2 - 2|x| (Liu et al., Bi-Real Net), DoReFa-Net's identity gradient through round(clip(x, 0, 1))
(Zhou et al.; Shen et al.'s eq. 1), and the magnitude-aware sign's scale (Bi-Real Net).
"""
import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from lqsearch import quantizers


def _quantize(preset_name, activations, kernel):
    kwargs = quantizers.get(preset_name).layer_kwargs()
    x = tf.constant(activations, tf.float32)
    w = tf.constant(kernel, tf.float32)
    qx = kwargs["input_quantizer"](x).numpy()
    qw = kwargs["kernel_quantizer"](w).numpy() if kwargs["kernel_quantizer"] else w.numpy()
    return qx, qw, kwargs


def test_dorefa_is_shen_equation_1():
    x = [-1.5, 0.2, 0.49, 0.51, 0.9, 3.0]
    w = np.array([[-0.5, 0.1], [0.2, -0.4]])
    qx, qw, kwargs = _quantize("dorefa", x, w)
    np.testing.assert_allclose(qx, [0, 0, 0, 1, 1, 1])  # round(clip(x, 0, 1))
    np.testing.assert_allclose(qw, np.sign(w) * np.mean(np.abs(w)), rtol=1e-6)  # sign(w) * E|w|
    assert kwargs["kernel_constraint"] is None  # Shen et al.: no weight clip
    assert quantizers.get("dorefa").lce_binary is False


def test_bireal_uses_approx_sign_and_per_channel_magnitude():
    x = [-2.0, -0.1, 0.0, 0.3]
    w = np.array([[[[-0.5, 0.1], [0.3, -0.2]]]])  # 1x1x2x2 kernel, 2 output channels
    qx, qw, kwargs = _quantize("bireal", x, w)
    np.testing.assert_allclose(qx, [-1, -1, 1, 1])
    scale = np.mean(np.abs(w), axis=(0, 1, 2))
    np.testing.assert_allclose(qw, np.sign(w) * scale, rtol=1e-6)
    assert isinstance(kwargs["kernel_constraint"], lq.constraints.WeightClip)


def test_ste_sign_for_both():
    x = [-0.7, 0.0, 0.2]
    w = np.array([-0.3, 0.0, 0.8])
    qx, qw, kwargs = _quantize("ste", x, w)
    np.testing.assert_allclose(qx, [-1, 1, 1])
    np.testing.assert_allclose(qw, [-1, 1, 1])
    assert isinstance(kwargs["kernel_constraint"], lq.constraints.WeightClip)


def test_float_preset_is_relu_and_float_weights():
    qx, qw, kwargs = _quantize("float", [-1.0, 0.5], np.array([0.3, -0.2]))
    np.testing.assert_allclose(qx, [0.0, 0.5])
    np.testing.assert_allclose(qw, [0.3, -0.2])


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ValueError, match="valid presets are bireal, dorefa, float, ste") as info:
        quantizers.get("dorefaa")
    assert "Did you mean 'dorefa'" in str(info.value)


def test_presets_give_fresh_instances():
    a, b = quantizers.get("bireal").layer_kwargs(), quantizers.get("bireal").layer_kwargs()
    assert a["input_quantizer"] is not b["input_quantizer"]


@pytest.mark.parametrize("name", quantizers.list_presets())
def test_layer_serialization_round_trip(name):
    """Every registered preset survives QuantConv2D get_config/from_config with the same outputs."""
    layer = lq.layers.QuantConv2D(4, 3, padding="same", use_bias=False, **quantizers.get(name).layer_kwargs())
    x = tf.random.stateless_normal((2, 6, 6, 3), seed=(1, 2))
    y = layer(x)
    clone = lq.layers.QuantConv2D.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), y.numpy(), atol=1e-6)


X = np.array([-1.5, -0.9, -0.4, 0.1, 0.45, 0.8, 1.3], np.float32)  # no point on a kink (0, +-1)
W = np.array([[[[-1.4, 0.3], [0.6, -0.2]]], [[[0.9, -0.7], [0.05, 1.2]]]], np.float32)  # 2x1x2x2 kernel


def _gradient(quantizer, values):
    x = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizer(x)
    return tape.gradient(y, x).numpy()


EXPECTED_INPUT_GRADIENTS = {
    "ste": np.where(np.abs(X) <= 1, 1.0, 0.0),  # STE clipped to |x| <= 1
    "bireal": np.where(np.abs(X) <= 1, 2 - 2 * np.abs(X), 0.0),  # ApproxSign
    "dorefa": np.where((X >= 0) & (X <= 1), 1.0, 0.0),  # identity through round, zero outside the clip
    "float": np.where(X > 0, 1.0, 0.0),  # ReLU
}


@pytest.mark.parametrize("preset", quantizers.list_presets())
def test_input_quantizer_gradient_is_the_papers_formula(preset):
    kwargs = quantizers.get(preset).layer_kwargs()
    np.testing.assert_allclose(_gradient(kwargs["input_quantizer"], X), EXPECTED_INPUT_GRADIENTS[preset], atol=1e-6)


def _expected_kernel_gradient(preset):
    scale = np.mean(np.abs(W), axis=(0, 1, 2))  # per output channel
    clipped = np.where(np.abs(W) <= 1, 1.0, 0.0)
    return {
        "ste": clipped,
        "bireal": clipped * scale,  # the magnitude is a constant (stop_gradient) times the clipped STE
        "dorefa": np.ones_like(W),  # sign(w) * E|w| with an identity pseudo-gradient, no clip
        "float": np.ones_like(W),  # no kernel quantizer: the kernel itself
    }[preset]


@pytest.mark.parametrize("preset", quantizers.list_presets())
def test_kernel_quantizer_gradient_is_the_papers_formula(preset):
    quantizer = quantizers.get(preset).layer_kwargs()["kernel_quantizer"] or tf.identity
    np.testing.assert_allclose(_gradient(quantizer, W), _expected_kernel_gradient(preset), rtol=1e-5, atol=1e-6)


def test_every_preset_has_its_gradient_formulas():
    assert set(EXPECTED_INPUT_GRADIENTS) == set(quantizers.list_presets())
