"""Weight-sharing supernet: elastic layers, extraction equivalence, no retracing, resumable
training, BatchNorm recalibration, Kendall's tau and the rank-correlation study."""
import itertools
import json
import math
import random

import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import quantizers
from lqsearch.data import load_dataset
from lqsearch.genome import Gene
from lqsearch.spaces import _blocks
from lqsearch.spaces.base import SearchSpace
from lqsearch.supernet import Supernet, accuracy, elastic, measure_rank_correlation, recalibrate_batchnorm
from lqsearch.supernet.rank_correlation import kendall_tau
from lqsearch.supernet.training import standalone_optimizer

NUM_CLASSES = 10
TOLERANCE = 1e-4


class JointSpace(SearchSpace):
    """Test-only space (not registered): conv2 and conv3 each have a width gene AND a groups gene.

    conv1 (float 3x3, 4 or 8 ch) -> conv2 (binary 3x3/2, 4 or 8 ch, groups 1/2/4)
    -> conv3 (binary 1x1, 4 or 8 ch, groups 1/2) -> flatten -> fc.
    """

    name = "joint_test"
    analytic_cost = True  # `_build` uses only `_blocks` helpers
    default_input_shape = (8, 8, 3)
    default_num_classes = NUM_CLASSES
    default_quantizer = "bireal"

    def _make_genes(self):
        return [
            Gene("conv1", (0.5, 1.0)),
            Gene("conv2", (0.5, 1.0)),
            Gene("conv2_groups", (1, 2, 4), kind="groups"),
            Gene("conv3", (0.5, 1.0)),
            Gene("conv3_groups", (1, 2), kind="groups"),
        ]

    def _concrete(self, gene, value):
        return int(value) if gene.kind == "groups" else self.channels(8, value)

    def _build(self, genome, inputs, num_classes, preset):
        table = dict(self.layer_table(genome))
        x = _blocks.float_conv(inputs, table["conv1"], 3, name="conv1")
        x = _blocks.batch_norm(x, name="bn1")
        x = _blocks.binary_conv(x, table["conv2"], 3, strides=2, groups=table["conv2_groups"], preset=preset,
                                name="conv2")
        x = _blocks.batch_norm(x, name="bn2")
        x = _blocks.binary_conv(x, table["conv3"], 1, groups=table["conv3_groups"], preset=preset, name="conv3")
        x = _blocks.batch_norm(x, name="bn3")
        return _blocks.classifier(x, num_classes, flatten=True)


def _randomize_batchnorm(model, seed=0):
    """Non-trivial BatchNorm parameters and statistics, so a wrong channel slice shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, elastic.ElasticBatchNormalization):
            size = layer.max_channels
            layer.gamma.assign(rng.uniform(0.5, 1.5, size))
            layer.beta.assign(rng.normal(0.0, 0.2, size))
            layer.moving_mean.assign(rng.normal(0.0, 0.2, size))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size))


def _images(shape, count=8, seed=0):
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


def _genomes(supernet, count, seed=0):
    space = supernet.space
    rng = random.Random(seed)
    return [space.cheapest(), space.costliest()] + [supernet.sample_genome(rng) for _ in range(count)]


def _assert_extraction_matches(supernet, genomes, images):
    _randomize_batchnorm(supernet.model)
    forward = tf.function(lambda x: supernet.model(x, training=False))
    for genome in genomes:
        supernet.set_genome(genome)
        elastic = forward(images).numpy()
        static = supernet.extract(genome)
        assert static.name == supernet.space.name  # a static model from space.build
        np.testing.assert_allclose(static(images, training=False).numpy(), elastic, atol=TOLERANCE, rtol=0)
    assert forward.experimental_get_tracing_count() == 1


# -- kernels -------------------------------------------------------------------------------
@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_grouped_kernel_is_the_block_diagonal_crop(groups):
    dense = np.random.default_rng(0).normal(size=(3, 3, 8, 16)).astype(np.float32)
    grouped = elastic.grouped_kernel(tf.constant(dense), groups).numpy()
    assert grouped.shape == (3, 3, 8 // groups, 16)
    per_group = 8 // groups
    for out in range(16):
        first = (out // (16 // groups)) * per_group
        np.testing.assert_array_equal(grouped[:, :, :, out], dense[:, :, first:first + per_group, out])
    back = elastic.block_diagonal(grouped, groups)
    np.testing.assert_array_equal(elastic.grouped_kernel(tf.constant(back), groups).numpy(), grouped)
    images = tf.random.stateless_normal((2, 5, 5, 8), seed=(1, 2))
    np.testing.assert_allclose(tf.nn.conv2d(images, grouped, 1, "SAME").numpy(),
                               tf.nn.conv2d(images, back, 1, "SAME").numpy(), atol=1e-5)


def test_layers_without_an_elastic_counterpart_are_refused():
    inputs = tf.keras.Input((8, 8, 4))
    model = tf.keras.Model(inputs, tf.keras.layers.DepthwiseConv2D(3, name="depthwise")(inputs))
    with pytest.raises(TypeError, match="'depthwise' .*no elastic counterpart"):
        elastic.elastic_clone(model)


# -- extraction equivalence ------------------------------------------------------------------
@pytest.mark.slow
def test_width_only_extraction_matches_the_supernet():
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.0625)
    supernet = Supernet(space, input_shape=(16, 16, 1), num_classes=NUM_CLASSES)
    _assert_extraction_matches(supernet, _genomes(supernet, 3), _images((16, 16, 1)))


@pytest.mark.slow
@pytest.mark.heavy
def test_resnet_width_extraction_follows_stage_and_block_genes():
    space = lqsearch.spaces.get("resnet18", width_multiplier=0.0625, stem="cifar")
    supernet = Supernet(space, input_shape=(16, 16, 3), num_classes=NUM_CLASSES, quantizer="ste")
    assert supernet.conv_config(space.uniform(1))["block3_shortcut_conv"] == (8, 1)  # stage 2 width
    _assert_extraction_matches(supernet, _genomes(supernet, 1, seed=3), _images((16, 16, 3)))


@pytest.mark.slow
@pytest.mark.heavy
def test_group_only_extraction_matches_the_supernet_with_fp_shortcut_groups():
    space = lqsearch.spaces.get("mobilenet_m2", width_multiplier=0.125)
    supernet = Supernet(space, input_shape=(16, 16, 3), num_classes=NUM_CLASSES)
    genome = supernet.sample_genome(random.Random(5))
    assert supernet.conv_config(genome)["layer2_shortcut_conv"][1] == genome["layer2_shortcut_groups"]
    _assert_extraction_matches(supernet, _genomes(supernet, 2, seed=5), _images((16, 16, 3)))


@pytest.mark.slow
@pytest.mark.parametrize("preset", quantizers.list_presets())
def test_joint_width_and_group_extraction_matches_for_every_preset(preset):
    space = JointSpace()
    supernet = Supernet(space, input_shape=(8, 8, 3), num_classes=NUM_CLASSES, quantizer=preset)
    config = supernet.conv_config({"conv1": 0.5, "conv2": 1.0, "conv2_groups": 4, "conv3": 0.5, "conv3_groups": 2})
    assert config["conv2"] == (8, 4) and config["conv3"] == (4, 2)
    names, values = space.genes.names, [g.values for g in space.genes]
    genomes = [dict(zip(names, combination)) for combination in itertools.product(*values)][::3]
    _assert_extraction_matches(supernet, genomes + [space.cheapest(), space.costliest()], _images((8, 8, 3)))


def test_kernel_is_cropped_before_quantization():
    """Magnitude-aware scales are means over the kernel actually used, as in the static model."""
    supernet = Supernet(JointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES, quantizer="bireal")
    genome = {"conv1": 0.5, "conv2": 0.5, "conv2_groups": 2, "conv3": 1.0, "conv3_groups": 1}
    conv = supernet.model.get_layer("conv2")
    conv.kernel.assign(np.random.default_rng(0).normal(size=conv.kernel.shape))
    static = supernet.extract(genome).get_layer("conv2")
    static_kernel = static.get_weights()[0]
    assert static_kernel.shape == (3, 3, 2, 4)
    used = conv.kernel_quantizer(conv.active_kernel(4, 4, 2)).numpy()
    np.testing.assert_allclose(used, static.kernel_quantizer(static_kernel).numpy(), rtol=1e-6)
    quantized_then_cropped = elastic.grouped_kernel(conv.kernel_quantizer(conv.kernel)[:, :, :4, :4], 2).numpy()
    assert not np.allclose(used, quantized_then_cropped)


def test_inject_is_the_inverse_of_extract():
    space = JointSpace()
    supernet = Supernet(space, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    genome = {"conv1": 1.0, "conv2": 0.5, "conv2_groups": 4, "conv3": 1.0, "conv3_groups": 2}
    static = space.build(genome, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    supernet.inject(static)
    for original, extracted in zip(static.get_weights(), supernet.extract(genome).get_weights()):
        np.testing.assert_array_equal(original, extracted)


# -- no retracing ------------------------------------------------------------------------
@pytest.mark.slow
def test_changing_the_genome_does_not_retrace():
    supernet = Supernet(JointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    traces = []

    @tf.function
    def forward(images):
        traces.append(1)  # runs only while tracing
        return supernet.model(images, training=False)

    images = _images((8, 8, 3))
    outputs = []
    for genome in _genomes(supernet, 4):
        supernet.set_genome(genome)
        outputs.append(forward(images).numpy())
    assert len(traces) == 1
    assert not np.allclose(outputs[0], outputs[1])  # the genome did change the computation
    labels = tf.zeros([8], tf.int32)
    for genome in _genomes(supernet, 2):
        supernet.set_genome(genome)
        supernet.gradients(images, labels, tf.zeros([8, NUM_CLASSES]), tf.constant(0.0))
    assert supernet.gradients.experimental_get_tracing_count() == 1


def test_evaluating_many_candidates_never_retraces():
    supernet = Supernet(JointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    _randomize_batchnorm(supernet.model)
    labels = np.arange(8) % NUM_CLASSES
    recalibration = [(_images((8, 8, 3), seed=s), labels) for s in range(2)] + [(_images((8, 8, 3), 5, 9), None)]
    validation = [(_images((8, 8, 3), seed=3), labels), (_images((8, 8, 3), 3, seed=4), labels[:3])]  # ragged
    before = [w.copy() for w in supernet.model.get_weights()]
    accuracies = [supernet.evaluate(genome, validation, recalibration_data=recalibration)
                  for genome in _genomes(supernet, 5, seed=1)]
    assert supernet.tracing_counts() == {
        "gradients": 0, "set_genome": 1, "predict": 1, "recalibrate_accumulate": 1, "recalibrate_write": 1,
        "recalibrate_reset": 1, "recalibrate_save": 1, "recalibrate_restore": 1}
    assert len(accuracies) == 7 and all(0.0 <= a <= 100.0 for a in accuracies)
    for got, expected in zip(supernet.model.get_weights(), before):  # statistics and genome restored
        np.testing.assert_array_equal(got, expected)


def test_probing_the_space_on_shapes_finds_what_building_finds():
    class BuiltJointSpace(JointSpace):
        analytic_cost = False

    traced = Supernet(JointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    built = Supernet(BuiltJointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    assert traced._controls == built._controls == {
        "conv1": ["conv1", None], "conv2": ["conv2", "conv2_groups"], "conv3": ["conv3", "conv3_groups"]}
    genome = {"conv1": 0.5, "conv2": 1.0, "conv2_groups": 4, "conv3": 0.5, "conv3_groups": 2}
    assert traced.conv_config(genome) == built.conv_config(genome) == JointSpace().conv_configs(
        genome, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)


# -- training and resuming ---------------------------------------------------------------
def _fixed_batches():
    rng = np.random.default_rng(0)
    images = rng.random((3 * 8, 8, 8, 3), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, 3 * 8).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)  # 3 batches, not shuffled


@pytest.mark.slow
@pytest.mark.heavy
def test_training_resumes_from_the_run_directory(tmp_path):
    space, pipeline = JointSpace(), _fixed_batches()
    first = Supernet(space, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    initial = first.model.get_weights()
    stats = first.train(pipeline, steps=4, checkpoint_dir=tmp_path / "a", optimizer=tf.keras.optimizers.Adam(1e-2),
                        checkpoint_every=2, seed=7)
    assert stats["start_step"] == 0 and stats["trained_steps"] == 4
    assert first.is_trained(tmp_path / "a", 4) and not first.is_trained(tmp_path / "a", 6)

    resumed = Supernet(space, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    stats = resumed.train(pipeline, steps=6, checkpoint_dir=tmp_path / "a",
                          optimizer=tf.keras.optimizers.Adam(1e-2), seed=7)
    assert stats["start_step"] == 4 and stats["trained_steps"] == 2
    assert resumed.is_trained(tmp_path / "a", 6)

    straight = Supernet(space, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    straight.model.set_weights(initial)
    straight.train(pipeline, steps=6, checkpoint_dir=tmp_path / "b", optimizer=tf.keras.optimizers.Adam(1e-2), seed=7)
    for got, expected in zip(resumed.model.get_weights(), straight.model.get_weights()):
        np.testing.assert_allclose(got, expected, atol=1e-5)

    again = resumed.train(pipeline, steps=6, checkpoint_dir=tmp_path / "a", seed=7)
    assert again["skipped"] and again["trained_steps"] == 0


@pytest.mark.slow
def test_sandwich_training_with_distillation_runs_and_refuses_other_supernets(tmp_path):
    supernet = Supernet(JointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    stats = supernet.train(_fixed_batches(), steps=3, checkpoint_dir=tmp_path, sandwich=True, distill=True,
                           log_every=1)
    assert len(stats["loss_history"]) == 3 and all(math.isfinite(loss) for _, loss in stats["loss_history"])
    with pytest.raises(ValueError, match="set sandwich=True"):
        supernet.train(_fixed_batches(), steps=3, checkpoint_dir=tmp_path, distill=True)
    other = Supernet(JointSpace(), input_shape=(8, 8, 3), num_classes=NUM_CLASSES, quantizer="ste")
    with pytest.raises(ValueError, match="another quantizer"):
        other.train(_fixed_batches(), steps=3, checkpoint_dir=tmp_path)


@pytest.mark.slow
def test_standalone_training_through_the_twin_matches_keras_training():
    space = JointSpace()
    genome = {"conv1": 1.0, "conv2": 1.0, "conv2_groups": 2, "conv3": 0.5, "conv3_groups": 2}
    supernet = Supernet(space, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    static = space.build(genome, input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
    twin = supernet.train_standalone(genome, _fixed_batches(), epochs=2, learning_rate=1e-2, initial_model=static)
    static.compile(standalone_optimizer(1e-2, 6), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    static.fit(_fixed_batches(), epochs=2, shuffle=False, verbose=0)
    for got, expected in zip(twin.get_weights(), static.get_weights()):
        np.testing.assert_allclose(got, expected, atol=1e-4)


# -- BatchNorm recalibration and evaluation --------------------------------------------------
def test_recalibration_pools_the_statistics_of_all_batches():
    inputs = tf.keras.Input((4, 4, 2))
    outputs = tf.keras.layers.BatchNormalization(name="bn")(tf.keras.layers.Conv2D(3, 1, name="conv")(inputs))
    model = tf.keras.Model(inputs, outputs)
    batches = [(_images((4, 4, 2), count=5, seed=s), None) for s in range(3)]
    report = recalibrate_batchnorm(model, batches)
    assert report == {"layers": 1, "batches": 3, "examples": 15}
    features = model.get_layer("conv")(np.concatenate([b[0] for b in batches])).numpy().reshape(-1, 3)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), features.mean(0), atol=1e-5)
    np.testing.assert_allclose(model.get_layer("bn").moving_variance.numpy(), features.var(0), atol=1e-5)
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_batchnorm(model, [])


@pytest.mark.slow
def test_evaluate_in_the_supernet_equals_evaluating_the_extracted_model(tmp_path):
    data = load_dataset("embedded", batch_size=32, train_limit=300, test_limit=50, search_fraction=0.2,
                        image_size=8, seed=0)
    supernet = Supernet(JointSpace(), input_shape=(8, 8, 1), num_classes=NUM_CLASSES)
    supernet.train(data.search_train, steps=20, checkpoint_dir=tmp_path, seed=0)
    batches = data.take_batches("search_train", 3)
    genome = supernet.sample_genome(np.random.default_rng(3))
    before = [w.copy() for w in supernet.model.get_weights()]
    fast = supernet.evaluate(genome, data.search_val, recalibration_data=batches)
    static = supernet.extract(genome)
    recalibrate_batchnorm(static, batches)
    assert fast == accuracy(static, data.search_val)
    assert fast == supernet.evaluate(genome, data.search_val, recalibration_data=batches, static=True)
    for got, expected in zip(supernet.model.get_weights(), before):  # shared statistics restored
        np.testing.assert_array_equal(got, expected)
    plain = supernet.evaluate(genome, data.search_val, recalibrate=False)
    assert plain == supernet.evaluate(genome, data.search_val, recalibrate=False, static=True)
    with pytest.raises(ValueError, match="recalibrate=True needs recalibration_data"):
        supernet.evaluate(genome, data.search_val)


# -- Kendall's tau and the study -------------------------------------------------------------
def test_kendall_tau_is_scipys_tau_b_with_its_p_value():
    tau, p_value = kendall_tau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert tau == pytest.approx(1.0) and p_value == pytest.approx(2 / 120)  # exact test: 1 of 5! orders, two-sided
    tau, _ = kendall_tau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])
    assert tau == pytest.approx(-0.47140452079103173)  # tau-b, ties handled
    assert kendall_tau([1, 1, 1], [1, 2, 3]) == (None, None)  # undefined, written as null
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])


@pytest.mark.slow
@pytest.mark.heavy
def test_rank_correlation_writes_pairs_and_tau(tmp_path):
    data = load_dataset("embedded", batch_size=32, train_limit=200, test_limit=50, search_fraction=0.25,
                        image_size=8, seed=0)
    result = measure_rank_correlation(JointSpace(), data, out_dir=tmp_path, n=3, epochs_scratch=1,
                                    supernet_steps=5, recalibration_batches=2)
    saved = json.loads((tmp_path / "rank_correlation.json").read_text())
    assert saved["complete"] and len(saved["pairs"]) == 3
    for key in ("kendall_tau", "kendall_tau_p_value", "kendall_tau_no_recalibration", "recalibration_gain",
                "cost_ratio"):
        assert key in saved and key in result
    pair = saved["pairs"][0]
    for key in ("genome", "flops", "oneshot_accuracy", "oneshot_accuracy_no_recalibration", "scratch_accuracy"):
        assert key in pair
    assert saved["scratch_trainer"] == "elastic"  # the joint space has group genes
    assert [p["flops"] for p in saved["pairs"]] == sorted(p["flops"] for p in saved["pairs"])
