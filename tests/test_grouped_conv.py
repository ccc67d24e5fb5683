"""Natively run grouped convolutions: same outputs and gradients as Keras' XLA path, no XLA in the
graph, serialization, the oneDNN-off fallback, and LCE export with one grouped LceBconv2d per layer."""
import math
import os
import subprocess
import sys
import textwrap

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import quantizers
from lqsearch.deploy import lce
from lqsearch.spaces.layers import GROUPED_TYPES, GroupedConv2D, QuantGroupedConv2D, native_grouped_gradients

TOLERANCE = 1e-5
CHANNELS = 16


def _pair(preset, groups, strides):
    """(native layer, Keras / larq layer) with the same config and the same weights."""
    arguments = dict(filters=CHANNELS, kernel_size=3, strides=strides, padding="same", groups=groups,
                     use_bias=False, name="conv")
    if preset is None:
        native, stock = GroupedConv2D(**arguments), tf.keras.layers.Conv2D(**arguments)
    else:
        native = QuantGroupedConv2D(**arguments, **quantizers.get(preset).layer_kwargs())
        stock = lq.layers.QuantConv2D(**arguments, **quantizers.get(preset).layer_kwargs())
    shape = (None, 6, 6, CHANNELS)
    native.build(shape)
    stock.build(shape)
    kernel = np.random.default_rng(groups).normal(size=native.kernel.shape).astype(np.float32)
    native.set_weights([kernel])
    stock.set_weights([kernel])
    return native, stock


def _outputs_and_gradients(layer, images):
    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = layer(images)
        # A non-uniform upstream gradient, so every output position and channel matters.
        upstream = tf.reshape(tf.cos(tf.range(tf.size(outputs), dtype=tf.float32)), tf.shape(outputs))
        loss = tf.reduce_sum(outputs * upstream)
    image_gradient, kernel_gradient = tape.gradient(loss, [images, layer.trainable_variables[0]])
    return outputs.numpy(), image_gradient.numpy(), kernel_gradient.numpy()


def _assert_same_as_keras(preset, groups, strides):
    native, stock = _pair(preset, groups, strides)
    images = np.random.default_rng(1).normal(size=(3, 6, 6, CHANNELS)).astype(np.float32)
    for got, expected in zip(_outputs_and_gradients(native, images), _outputs_and_gradients(stock, images)):
        assert np.abs(expected).max() > 0  # the check is not vacuous
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=TOLERANCE)


def test_onednn_gives_native_grouped_gradients_here():
    assert native_grouped_gradients()


@pytest.mark.parametrize("preset", [None] + quantizers.list_presets(), ids=lambda p: p or "keras-float")
def test_every_preset_matches_keras_at_four_groups(preset):
    _assert_same_as_keras(preset, 4, 1)


@pytest.mark.slow
@pytest.mark.parametrize("preset", [None] + quantizers.list_presets(), ids=lambda p: p or "keras-float")
@pytest.mark.parametrize("groups", [2, 8, 16])
@pytest.mark.parametrize("strides", [1, 2])
def test_outputs_and_gradients_equal_keras_for_every_preset(preset, groups, strides):
    _assert_same_as_keras(preset, groups, strides)


@pytest.mark.parametrize("preset", [None, "bireal"])
def test_the_graph_runs_a_plain_grouped_conv_without_xla(preset):
    native, stock = _pair(preset, 4, 1)
    spec = tf.TensorSpec((None, 6, 6, CHANNELS), tf.float32)

    def has_xla(layer):
        graph = tf.function(layer).get_concrete_function(spec).graph
        functions = graph.as_graph_def().library.function
        return any(f.attr["_XlaMustCompile"].b for f in functions)

    assert has_xla(stock)  # what Keras does; if this fails, Keras changed its grouped-conv path
    assert not has_xla(native)


def test_config_round_trip_and_registered_names():
    native, _ = _pair("bireal", 4, 2)
    assert tf.keras.utils.get_registered_name(QuantGroupedConv2D) == "lqsearch>QuantGroupedConv2D"
    assert tf.keras.utils.get_registered_name(GroupedConv2D) == "lqsearch>GroupedConv2D"
    clone = tf.keras.layers.deserialize(tf.keras.layers.serialize(native))
    assert type(clone) is QuantGroupedConv2D and clone.groups == 4 and clone.strides == (2, 2)
    assert GROUPED_TYPES == {GroupedConv2D: tf.keras.layers.Conv2D, QuantGroupedConv2D: lq.layers.QuantConv2D}


def test_spaces_use_native_layers_only_where_grouped():
    space = lqsearch.spaces.get("mobilenet_m2", width_multiplier=0.25)
    model = space.build({**space.uniform(1), "layer3_groups": 4, "layer2_shortcut_groups": 2},
                        input_shape=(32, 32, 3), num_classes=10)
    assert type(model.get_layer("layer3_conv3x3")) is QuantGroupedConv2D
    assert type(model.get_layer("layer2_shortcut_conv")) is GroupedConv2D
    assert type(model.get_layer("layer4_conv3x3")) is lq.layers.QuantConv2D
    assert type(model.get_layer("layer4_shortcut_conv")) is tf.keras.layers.Conv2D


_FALLBACK_SCRIPT = textwrap.dedent("""
    import logging
    import numpy as np
    import tensorflow as tf  # imported first, with oneDNN off: no native grouped-conv gradients
    logging.basicConfig()
    from lqsearch.spaces.layers import GroupedConv2D, grouped_convolution, native_grouped_gradients
    from lqsearch.supernet.elastic import grouped_kernel
    assert not native_grouped_gradients()
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(2, 5, 5, 8)).astype(np.float32))
    dense = tf.Variable(rng.normal(size=(3, 3, 8, 8)).astype(np.float32))
    with tf.GradientTape() as tape:  # the reference: an ungrouped conv on the block-diagonal kernel
        tape.watch(images)
        loss = tf.reduce_sum(tf.nn.conv2d(images, dense, 1, "SAME") ** 2)
    expected_images, expected_dense = tape.gradient(loss, [images, dense])
    layer = GroupedConv2D(8, 3, padding="same", groups=4, use_bias=False)
    layer.build(images.shape)
    layer.kernel.assign(grouped_kernel(dense, 4))
    dense.assign(tf.zeros_like(dense) + np.asarray(dense) * (np.arange(8)[:, None] // 2 == np.arange(8) // 2))
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(tf.nn.conv2d(images, dense, 1, "SAME") ** 2)
    expected_images, expected_dense = tape.gradient(loss, [images, dense])
    for name, convolve in (("layer", layer), ("function", lambda x: grouped_convolution(
            x, layer.kernel, strides=(1, 1), padding="SAME", dilations=(1, 1)))):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(convolve(images) ** 2)
        got_images, got_kernel = tape.gradient(loss, [images, layer.kernel])
        np.testing.assert_allclose(got_images, expected_images, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(got_kernel, grouped_kernel(expected_dense, 4), atol=1e-4, err_msg=name)
    print("FALLBACK-OK")
""")


@pytest.mark.slow
def test_without_onednn_grouped_convs_fall_back_to_a_correct_path():
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", _FALLBACK_SCRIPT], capture_output=True, text=True,
                            env=environment, timeout=600)
    assert "FALLBACK-OK" in result.stdout, result.stderr[-3000:]
    assert "oneDNN is off" in result.stderr and "TF_ENABLE_ONEDNN_OPTS=1" in result.stderr


@pytest.mark.slow
@pytest.mark.heavy
def test_lce_export_keeps_one_grouped_bconv_per_binary_layer():
    space = lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.5, lce_compatible=True)
    genome = {**space.uniform(1), "layer6_groups": 2, "layer12_groups": 8, "layer13_groups": 16}
    model = space.build(genome, input_shape=(32, 32, 3), num_classes=10, quantizer="bireal")
    grouped = [layer for layer in model.layers if type(layer) is QuantGroupedConv2D]
    assert [layer.name for layer in grouped] == ["layer6_conv3x3", "layer12_conv3x3", "layer13_conv3x3"]
    binary = lce.binary_conv_layers(model)
    flatbuffer = lce.convert(model)
    assert lce.count_ops(flatbuffer)["LceBconv2d"] == len(binary) == 26
    report = lce.conversion_report(model, flatbuffer)
    assert report.all_binary, report.summary()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer, experimental_op_resolver_type=(
        tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    shapes = {d["name"]: tuple(int(s) for s in d["shape"]) for d in interpreter.get_tensor_details()}
    filters = sorted(shapes[op.inputs[1]] for op in lce.list_ops(flatbuffer) if op.name == "LceBconv2d")
    # LCE's filter is (Cout, kh, kw, Cin / groups packed 32 channels to a word): each layer keeps its groups.
    expected = sorted((layer.filters, *layer.kernel_size, math.ceil(layer.kernel.shape[2] / 32)) for layer in binary)
    assert filters == expected
    assert (512, 3, 3, 1) in filters and (512, 3, 3, 16) not in filters  # layer13 at 16 groups, not dense
