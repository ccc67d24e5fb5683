"""Registry-driven smoke tests: every registered space builds and trains; round-trips."""
import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch.spaces.mobilenet import divisors
from lqsearch.spaces.resnet18 import RES18_AUTO_A, RES18_AUTO_B
from lqsearch.spaces.vgg_small import VGG_AUTO_A, VGG_AUTO_B

SMALL = {"input_shape": (32, 32, 3), "num_classes": 10}
SPACES = lqsearch.spaces.list_spaces()
#: Full-precision convs of each space: the first conv, plus M1/M2's documented 1x1 shortcut convs in
#: layers 1, 2, 4, 6 and 12 (the classifier, a Dense, is full precision too). Every other conv is binary.
FP_CONVS = {
    "vgg_small": ["conv1"],
    "resnet18": ["stem_conv"],
    "mobilenet_m1": ["stem_conv"] + [f"layer{i}_shortcut_conv" for i in (1, 2, 4, 6, 12)],
    "mobilenet_m2": ["stem_conv"] + [f"layer{i}_shortcut_conv" for i in (1, 2, 4, 6, 12)],
    "mobilenet_m3": ["stem_conv"],
}


def _small_space(name):
    return lqsearch.spaces.get(name, width_multiplier=0.25)


def test_registry_lists_the_paper_spaces():
    assert set(SPACES) >= {"vgg_small", "resnet18", "mobilenet_m1", "mobilenet_m2", "mobilenet_m3"}


def test_unknown_space_lists_registered_ones():
    with pytest.raises(ValueError, match="valid spaces are mobilenet_m1, .*vgg_small"):
        lqsearch.spaces.get("vgg_smal")


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['widht'\].*valid options are"):
        lqsearch.spaces.get("vgg_small", widht=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("which", ["cheapest", "uniform1", "costliest"])
@pytest.mark.heavy
def test_every_space_builds_and_trains_one_step(name, which):
    space = _small_space(name)
    genome = {"cheapest": space.cheapest(), "uniform1": space.uniform(1), "costliest": space.costliest()}[which]
    model = space.build(genome, **SMALL)
    assert model.output_shape == (None, 10)
    convs = [l for l in model.layers if isinstance(l, tf.keras.layers.Conv2D)]
    full_precision = sorted(l.name for l in convs if not isinstance(l, lq.layers.QuantConv2D))
    assert full_precision == sorted(FP_CONVS[name])
    assert not isinstance(convs[0], lq.layers.QuantConv2D)  # first layer full precision
    assert type(model.layers[-1]) is tf.keras.layers.Dense  # classifier full precision
    for layer in convs:
        if isinstance(layer, lq.layers.QuantConv2D):  # the others are binary: 1-bit inputs and kernels
            assert layer.input_quantizer.precision == layer.kernel_quantizer.precision == 1, layer.name
    model.compile(tf.keras.optimizers.SGD(0.01), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    loss = model.train_on_batch(x, np.arange(4) % 10)
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", SPACES)
def test_exactly_the_documented_convs_are_full_precision(name):
    space = _small_space(name)
    for genome in (space.cheapest(), space.costliest()):
        layers = space.layer_costs(genome, **SMALL).layers
        full_precision = [n for n, c in layers.items() if c.fp_macs and n != "fc"]
        binary = [n for n, c in layers.items() if c.binary_macs]
        assert sorted(full_precision) == sorted(FP_CONVS[name])
        assert layers["fc"].fp_macs and not layers["fc"].binary_macs
        assert binary and not set(binary) & set(full_precision)  # each conv is binary or FP, not a mix


def test_mobilenet_four_fp_shortcut_reading():
    space = lqsearch.spaces.get("mobilenet_m2", width_multiplier=0.25, fp_shortcut_at_layer1=False)
    assert [g.name for g in space.genes if "shortcut" in g.name] == [
        f"layer{i}_shortcut_groups" for i in (2, 4, 6, 12)]
    layers = space.layer_costs(space.uniform(2), **SMALL).layers
    assert "layer1_shortcut_conv" not in layers and "layer2_shortcut_conv" in layers
    model = space.build(space.uniform(2), **SMALL)
    assert "layer1_shortcut_conv" not in [l.name for l in model.layers]
    assert model.get_layer("layer2_shortcut_conv").groups == 2
    assert lqsearch.spaces.from_config(space.get_config()).options["fp_shortcut_at_layer1"] is False
    with pytest.raises(ValueError, match="fp_shortcut_at_layer1"):
        lqsearch.spaces.get("mobilenet_m1", fp_shortcut_at_layer1="no")
    with pytest.raises(ValueError, match="Unknown option"):
        lqsearch.spaces.get("mobilenet_m3", fp_shortcut_at_layer1=False)


@pytest.mark.parametrize("genome", [VGG_AUTO_A, VGG_AUTO_B])
def test_published_vgg_genomes_build(genome):
    model = lqsearch.spaces.get("vgg_small").build(genome)
    widths = [model.get_layer(f"conv{i}").filters for i in range(1, 7)]
    assert widths == [int(b * r) for b, r in zip((128, 128, 256, 256, 512, 512), genome)]


@pytest.mark.parametrize("genome", [RES18_AUTO_A, RES18_AUTO_B])
def test_published_resnet_genomes_build(genome):
    space = lqsearch.spaces.get("resnet18", width_multiplier=0.125)  # 1/8 of the widths: a fast build
    model = space.build(genome, input_shape=(32, 32, 3), num_classes=10)
    assert model.get_layer("stem_conv").filters == 8 * genome[0]
    assert model.get_layer("block8_conv1").filters == 64 * genome[11]
    assert model.get_layer("block8_conv2").filters == 64 * genome[3]


def test_resnet_stems():
    space = lqsearch.spaces.get("resnet18", width_multiplier=0.25)
    assert space.build(space.uniform(1), **SMALL).get_layer("stem_conv").kernel_size == (3, 3)
    imagenet = space.build(space.uniform(1), input_shape=(64, 64, 3), num_classes=10)
    assert imagenet.get_layer("stem_conv").kernel_size == (7, 7)
    forced = lqsearch.spaces.get("resnet18", stem="imagenet", width_multiplier=0.25)
    assert forced.build(forced.uniform(1), **SMALL).get_layer("stem_conv").kernel_size == (7, 7)
    with pytest.raises(ValueError, match="stem must be"):
        lqsearch.spaces.get("resnet18", stem="tiny")


@pytest.mark.parametrize("name", ["mobilenet_m1", "mobilenet_m2", "mobilenet_m3"])
def test_mobilenet_groups_come_from_input_channel_divisors(name):
    space = lqsearch.spaces.get(name)
    channels = space.layer_channels()
    for i, (cin, _, _) in enumerate(channels):
        gene = next(g for g in space.genes if g.name == f"layer{i + 1}_groups")
        assert gene.values == divisors(cin)
    model = _small_space(name).build(space.uniform(4), **SMALL)  # layer 3: 32 input channels at 1/4 width
    assert model.get_layer("layer3_conv3x3").groups == 4


def test_mobilenet_m2_searches_shortcut_groups():
    space = lqsearch.spaces.get("mobilenet_m2")
    shortcut_genes = [g.name for g in space.genes if "shortcut" in g.name]
    assert shortcut_genes == [f"layer{i}_shortcut_groups" for i in (1, 2, 4, 6, 12)]
    model = _small_space("mobilenet_m2").build(space.uniform(8), **SMALL)
    assert model.get_layer("layer4_shortcut_conv").groups == 8
    assert not isinstance(model.get_layer("layer4_shortcut_conv"), lq.layers.QuantConv2D)


def test_mobilenet_m3_has_no_full_precision_pointwise():
    model = lqsearch.spaces.get("mobilenet_m3").build([1] * 13, input_shape=(64, 64, 3), num_classes=10)
    fp = [l.name for l in model.layers
          if isinstance(l, tf.keras.layers.Conv2D) and not isinstance(l, lq.layers.QuantConv2D)]
    assert fp == ["stem_conv"]
    assert model.get_layer("layer2_pw_a").filters == 64


@pytest.mark.parametrize("name", ["mobilenet_m1", "mobilenet_m2", "mobilenet_m3"])
def test_lce_compatible_groups(name):
    space = lqsearch.spaces.get(name, lce_compatible=True)
    for i, (cin, _, _) in enumerate(space.layer_channels()):
        gene = next(g for g in space.genes if g.name == f"layer{i + 1}_groups")
        assert all((cin // g) % 32 == 0 for g in gene.values)
    assert next(g for g in space.genes if g.name == "layer13_groups").values == (1, 2, 4, 8, 16, 32)
    with pytest.raises(ValueError, match="not allowed"):
        space.genome({**space.uniform(1), "layer13_groups": 64})


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACES)
@pytest.mark.heavy
def test_model_config_and_h5_round_trip(name, tmp_path):
    space = _small_space(name)
    model = space.build(space.uniform(2), **SMALL)
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    clone = tf.keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), expected, atol=1e-5)
    path = tmp_path / "model.h5"
    model.save(path)
    np.testing.assert_allclose(tf.keras.models.load_model(path).predict(x, verbose=0), expected, atol=1e-5)


@pytest.mark.parametrize("name", SPACES)
def test_space_config_round_trip(name):
    space = lqsearch.spaces.get(name, width_multiplier=0.5)
    again = lqsearch.spaces.from_config(space.get_config())
    assert again.get_config() == space.get_config()
    assert [g.values for g in again.genes] == [g.values for g in space.genes]


def test_mobilenet_m3_refuses_a_width_that_leaves_a_layer_unsplittable():
    with pytest.raises(ValueError, match=r"cannot split into two halves; use width_multiplier >= 0.024"):
        lqsearch.spaces.get("mobilenet_m3", width_multiplier=0.01)
    assert len(lqsearch.spaces.get("mobilenet_m3", width_multiplier=0.024).genes) == 13
