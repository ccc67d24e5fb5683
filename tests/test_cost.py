"""Binary-aware cost model: the papers' published figures, larq-zoo's Bi-Real Net, any model, and the
analytic per-layer cost the spaces and `CostCache` use instead of building models."""
import random

import keras_tuner as kt
import larq as lq
import larq_zoo
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import cost
from lqsearch.search.tuner import budget_constraint
from lqsearch.spaces.vgg_small import VGGSmallSpace
from lqsearch.testing.paper_figures import ROWS, build_row, row_cost

#: Rows also checked against build + profile in the fast loop (one per family; the rest are slow).
PROFILED_FAST = ("VGG-Auto-A",)


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_published_figures(row):
    result = row_cost(row)
    assert result.flops == pytest.approx(row.flops, rel=row.tolerance)
    if row.memory_bits is not None:
        assert result.memory_bits == pytest.approx(row.memory_bits, rel=row.tolerance)


@pytest.mark.parametrize("row", [
    pytest.param(r, id=r.label, marks=() if r.label in PROFILED_FAST else pytest.mark.slow) for r in ROWS
])
@pytest.mark.heavy
def test_published_rows_cost_the_same_built_and_profiled(row):
    assert cost.profile(build_row(row)) == row_cost(row)


@pytest.mark.parametrize("name", ["mobilenet_m1", "mobilenet_m2"])
def test_the_two_readings_of_the_layer1_shortcut_differ_by_exactly_that_conv(name):
    five = lqsearch.spaces.get(name)
    four = lqsearch.spaces.get(name, fp_shortcut_at_layer1=False)
    assert four.fp_shortcut_layers() == (2, 4, 6, 12) and five.fp_shortcut_layers() == (1, 2, 4, 6, 12)
    groups = 4
    extra = five.layer_costs(five.uniform(groups))
    shortcut = {n: c for n, c in extra.layers.items() if n.startswith("layer1_shortcut")}
    assert set(shortcut) == {"layer1_shortcut_conv", "layer1_shortcut_bn"}
    assert set(extra.layers) - set(four.layer_costs(four.uniform(groups)).layers) == set(shortcut)
    layer1_groups = groups if name == "mobilenet_m2" else 1
    assert shortcut["layer1_shortcut_conv"].fp_macs == 112 * 112 * 32 * 64 // layer1_groups  # 224x224 input
    difference = five.cost(five.uniform(groups)).fp_macs - four.cost(four.uniform(groups)).fp_macs
    assert difference == sum(c.fp_macs for c in shortcut.values())


@pytest.mark.slow
def test_larq_zoo_birealnet():
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
    # The same model, counted by the analytic layer costs.
    tally = cost.CostTally()
    tally.add("conv", cost.conv_cost(output_pixels=64, kernel_size=(3, 3), in_channels=4, filters=8))
    tally.add("qconv", cost.conv_cost(output_pixels=64, kernel_size=(1, 1), in_channels=8, filters=16,
                                      input_bits=1, kernel_bits=1))
    tally.add("dense", cost.dense_cost(in_features=16, units=2))
    assert tally.total() == result


def test_analytic_layer_costs_follow_larqs_rules():
    grouped = cost.conv_cost(output_pixels=10, kernel_size=(3, 3), in_channels=8, filters=16, groups=4,
                             input_bits=1, kernel_bits=1)
    assert grouped.binary_macs == 10 * 9 * 2 * 16 and grouped.fp_macs == 0 and grouped.memory_bits == 9 * 2 * 16
    # A 32-bit input makes the MACs full precision; the 1-bit kernel is still stored in 1 bit.
    half = cost.conv_cost(output_pixels=10, kernel_size=(1, 1), in_channels=8, filters=4, kernel_bits=1)
    assert (half.binary_macs, half.fp_macs, half.memory_bits) == (0, 320, 32)
    assert cost.batch_norm_cost(5) == cost.Cost(0, 0, 0.0, 320, 10)  # moving mean and variance only
    with pytest.raises(ValueError, match="named 'x'"):
        tally = cost.CostTally()
        tally.add("x", half)
        tally.add("x", half)


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


def test_too_small_inputs_are_refused_as_build_refuses_them():
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    with pytest.raises(ValueError, match="too small"):
        space.cost(space.uniform(1), input_shape=(4, 4, 3), num_classes=10)
    with pytest.raises(ValueError):
        space.build(space.uniform(1), input_shape=(4, 4, 3), num_classes=10)


def _no_build(*args, **kwargs):
    raise AssertionError("a model was built")


def test_cost_cache_is_analytic_and_costs_each_genome_once(monkeypatch):
    space = lqsearch.spaces.get("mobilenet_m2", width_multiplier=0.25)
    cache = cost.CostCache(space, input_shape=(32, 32, 3), num_classes=10, quantizer="bireal")
    expected = space.cost(space.uniform(2), input_shape=(32, 32, 3), num_classes=10, quantizer="bireal")
    calls = []
    real_cost = space.cost
    monkeypatch.setattr(space, "build", _no_build)
    monkeypatch.setattr(space, "cost", lambda genome, **kw: calls.append(1) or real_cost(genome, **kw))
    assert cache(space.uniform(2)) == expected
    assert cache(space.genes.as_list(space.uniform(2))) == expected  # the same genome, as a sequence
    assert cache(space.uniform(4)).flops < expected.flops
    assert len(calls) == 2


def test_cost_cache_builds_and_profiles_spaces_without_an_analytic_cost(monkeypatch):
    class BuiltOnly(VGGSmallSpace):
        analytic_cost = False

    space = BuiltOnly(width_multiplier=0.125)
    cache = cost.CostCache(space, input_shape=(16, 16, 3), num_classes=10, quantizer="bireal")
    calls = []
    real_profile = cost.profile
    monkeypatch.setattr(cost, "profile", lambda m: calls.append(m.name) or real_profile(m))
    first = cache(space.uniform(1))
    assert cache(space.uniform(1)) == first and len(calls) == 1
    assert first == VGGSmallSpace(width_multiplier=0.125).cost(space.uniform(1), input_shape=(16, 16, 3),
                                                                num_classes=10, quantizer="bireal")
    with pytest.raises(NotImplementedError, match="no analytic cost"):
        space.layer_costs(space.uniform(1))


def test_sampling_under_a_flops_ceiling_never_builds_a_model(monkeypatch):
    space = lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.25)
    cache = cost.CostCache(space, input_shape=(32, 32, 1), num_classes=10, quantizer="bireal")
    ceiling = cache(space.uniform(4)).flops
    monkeypatch.setattr(space, "build", _no_build)
    within_budget = budget_constraint(space, cache, ceiling)
    rng = random.Random(0)
    verdicts = []
    for _ in range(300):
        hp = kt.HyperParameters()
        space.genes.declare(hp)
        for gene in space.genes:
            hp.values[gene.name] = rng.choice(gene.values)
        verdicts.append(within_budget(hp.values))
    assert 0 < sum(verdicts) < len(verdicts)  # the ceiling does split the samples
