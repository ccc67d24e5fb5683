"""Property: every registered space's analytic cost equals larq's profile of the built model, layer by
layer, on random genomes, options, input shapes, class counts and quantizer presets."""
import random

import pytest
import tensorflow as tf
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import lqsearch.spaces
from lqsearch import cost, quantizers

SPACES = lqsearch.spaces.list_spaces()
#: Options drawn per space (beyond width_multiplier): every option that changes the architecture.
EXTRA_OPTIONS = {
    "resnet18": {"stem": ["auto", "imagenet", "cifar"]},
    "mobilenet_m1": {"lce_compatible": [False, True], "fp_shortcut_at_layer1": [True, False]},
    "mobilenet_m2": {"lce_compatible": [False, True], "fp_shortcut_at_layer1": [True, False]},
    "mobilenet_m3": {"lce_compatible": [False, True]},
}
INPUT_SHAPES = [(32, 32, 3), (28, 28, 1), (16, 16, 3)]
#: Reproducible examples; no shrinking (each step is a model build: the failing configuration is in the message).
SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def configurations(draw, name):
    """(space, genome, build arguments) of one random configuration of space `name`."""
    options = {"width_multiplier": draw(st.sampled_from([0.25, 0.125]))}
    for option, values in EXTRA_OPTIONS.get(name, {}).items():
        options[option] = draw(st.sampled_from(values))
    space = lqsearch.spaces.get(name, **options)
    genome = {gene.name: draw(st.sampled_from(gene.values)) for gene in space.genes}
    arguments = {"input_shape": draw(st.sampled_from(INPUT_SHAPES)), "num_classes": draw(st.sampled_from([2, 10])),
                 "quantizer": draw(st.sampled_from(quantizers.list_presets()))}
    return space, genome, arguments


def _profiled_layer(model, name):
    """larq's profile of one layer of `model`, alone (its input shape kept)."""
    layer = model.get_layer(name)
    return cost.profile(tf.keras.Sequential([tf.keras.Input(layer.input_shape[1:]), layer]))


def _assert_analytic_equals_profile(configuration):
    space, genome, arguments = configuration
    tf.keras.backend.clear_session()  # a growing graph slows every later build down
    model = space.build(genome, **arguments)
    tally = space.layer_costs(genome, **arguments)
    assert cost.profile(model) == tally.total() == space.cost(genome, **arguments), (space, genome, arguments)
    assert sorted(tally.layers) == sorted(layer.name for layer in model.layers if layer.weights)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", SPACES)
@pytest.mark.heavy
def test_analytic_cost_equals_the_profile_on_200_random_genomes(name):
    @settings(max_examples=200, **SETTINGS)
    @given(configurations(name))
    def check(configuration):
        _assert_analytic_equals_profile(configuration)

    check()


#: The fast loop builds one model of these (the MobileNets take seconds to build; M2 has all their parts).
FAST_SPACES = ("vgg_small", "resnet18", "mobilenet_m2")


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in FAST_SPACES else pytest.mark.slow) for name in SPACES
])
def test_analytic_cost_equals_the_profile_on_a_random_genome(name):
    rng = random.Random(name)
    options = {"width_multiplier": 0.25, **{k: rng.choice(v) for k, v in EXTRA_OPTIONS.get(name, {}).items()}}
    space = lqsearch.spaces.get(name, **options)
    genome = {gene.name: rng.choice(gene.values) for gene in space.genes}
    _assert_analytic_equals_profile((space, genome, {"input_shape": (32, 32, 3), "num_classes": 10,
                                                     "quantizer": rng.choice(quantizers.list_presets())}))


def test_layer_costs_match_larqs_per_layer_profile():
    space = lqsearch.spaces.get("mobilenet_m2", width_multiplier=0.125)
    genome = {**space.uniform(1), "layer4_groups": 4, "layer4_shortcut_groups": 2}
    model = space.build(genome, input_shape=(16, 16, 3), num_classes=10)
    tally = space.layer_costs(genome, input_shape=(16, 16, 3), num_classes=10)
    for name in ("stem_conv", "layer4_conv3x3", "layer4_shortcut_conv", "layer4_shortcut_bn", "fc"):
        assert tally.layers[name] == _profiled_layer(model, name), name
    assert tally.layers["layer4_conv3x3"].binary_macs == 2 * 2 * 9 * (16 // 4) * 16  # 2x2 output after stride 2


def test_analytic_cost_is_fast():
    space = lqsearch.spaces.get("mobilenet_m3")
    genome = space.uniform(4)
    timer = tf.timestamp()
    for _ in range(50):
        space.cost(genome)
    assert float(tf.timestamp() - timer) / 50 < 0.01  # seconds; a build + profile takes 0.1 to 1 s
