"""LCE deployment: conversion, LceBconv2d counting, fallback report, latency, LatencyCache."""
import json

import numpy as np
import pytest
import tensorflow as tf

import lqsearch.spaces
from lqsearch import quantizers
from lqsearch.deploy import lce

INPUT_SHAPE = (32, 32, 3)


def as_if_trained(model, seed=1):
    """Gives every BatchNorm non-trivial statistics, as training would.

    A freshly initialised binary net produces exact zeros before its sign
    activations, where Keras and LCE may binarize differently; trained BN shifts
    remove those ties."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])
    return model


def tiny_vgg(quantizer="bireal", genome=1):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    return space, as_if_trained(space.build(space.uniform(genome), input_shape=INPUT_SHAPE, num_classes=10,
                                            quantizer=quantizer))


def images(n=4, seed=0):
    return np.random.RandomState(seed).uniform(size=(n, *INPUT_SHAPE)).astype(np.float32)


def lce_predict(flatbuffer, x):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(flatbuffer, num_threads=1, use_indirect_bgemm=True).predict(x)


@pytest.fixture(scope="module")
def bireal_export():
    """(keras logits, flatbuffer from convert_keras_model, fast flatbuffer) of a tiny bireal VGG-small."""
    _, model = tiny_vgg("bireal")
    return model.predict(images(), verbose=0), lce.convert(model), lce.convert(model, fast=True)


@pytest.mark.slow
def test_bireal_conversion_runs_in_the_lce_interpreter_and_matches_keras(bireal_export):
    keras_logits, flatbuffer, _ = bireal_export
    lce_logits = lce_predict(flatbuffer, images())
    assert lce_logits.shape == keras_logits.shape
    assert np.max(np.abs(lce_logits - keras_logits)) < 1e-3


@pytest.mark.slow
def test_every_binary_conv_becomes_an_lce_bconv(bireal_export):
    _, flatbuffer, _ = bireal_export
    _, model = tiny_vgg("bireal")
    report = lce.conversion_report(model, flatbuffer)
    assert report.binary_layers == ["conv2", "conv3", "conv4", "conv5", "conv6"]
    assert report.bconv_ops == 5 == lce.count_ops(flatbuffer)[lce.BCONV_OP]
    assert report.all_binary and report.fallbacks == {} and report.attribution == "tensor names"
    assert report.summary() == "5 LceBconv2d ops for 5 binary conv layers"
    assert json.loads(json.dumps(report.as_dict()))["bconv_ops"] == 5


@pytest.mark.slow
def test_fast_conversion_gives_the_same_ops_and_outputs(bireal_export):
    keras_logits, flatbuffer, fast = bireal_export
    assert lce.count_ops(fast) == lce.count_ops(flatbuffer)
    assert np.max(np.abs(lce_predict(fast, images()) - keras_logits)) < 1e-3


@pytest.mark.slow
def test_grouped_convs_lce_cannot_run_are_reported_and_the_converter_log_is_absorbed(capfd):
    space = lqsearch.spaces.get("mobilenet_m1", width_multiplier=0.25)
    genome = {gene.name: gene.values[min(2, len(gene.values) - 1)] for gene in space.genes}
    model = space.build(genome, input_shape=INPUT_SHAPE, num_classes=10, quantizer="bireal")
    report = lce.conversion_report(model, lce.convert(model, fast=True))
    expected = {layer.name for layer in lce.binary_conv_layers(model)
                if layer.groups > 1 and layer.kernel.shape[-2] % quantizers.LCE_GROUP_CHANNELS}
    assert expected and set(report.fallbacks) == expected
    assert report.bconv_ops == len(report.binary_layers) - len(expected)
    assert all("not a multiple of 32" in reason for reason in report.fallbacks.values())
    assert report.attribution == "tensor names" and not report.all_binary
    assert "Invalid binary grouped convolution" not in capfd.readouterr().err


@pytest.mark.slow
def test_dorefa_activations_are_not_lce_binary_and_no_speedup_is_claimed():
    _, model = tiny_vgg("dorefa")
    _, twin = tiny_vgg("float")
    flatbuffer = lce.convert(model, fast=True)
    report = lce.conversion_report(model, flatbuffer)
    assert report.bconv_ops == 0 and sorted(report.fallbacks) == report.binary_layers
    assert all("DoReFa" in reason for reason in report.fallbacks.values())
    latency = lce.compare_latency(model, twin, lce_binary=False, runs=2, binary_flatbuffer=flatbuffer)
    assert latency["speedup"] is None and "not +-1" in latency["note"]
    assert latency["binary_s"] > 0 and latency["float_s"] > 0


@pytest.mark.slow
def test_fallbacks_are_predicted_from_layer_settings_when_names_do_not_match(bireal_export, monkeypatch):
    _, flatbuffer, _ = bireal_export
    _, model = tiny_vgg("bireal")
    monkeypatch.setattr(lce, "_layer_of", lambda op, names: None)
    report = lce.conversion_report(model, flatbuffer)
    assert report.attribution == "layer settings" and report.fallbacks == {} and report.bconv_ops == 5


@pytest.mark.slow
def test_measure_latency_is_a_positive_median(bireal_export):
    _, flatbuffer, _ = bireal_export
    assert 0 < lce.measure_latency(flatbuffer, runs=3, warmup=1) < 1.0
    with pytest.raises(ValueError, match="runs must be an integer >= 1"):
        lce.measure_latency(flatbuffer, runs=0)


@pytest.mark.slow
def test_latency_cache_measures_each_genome_once_and_persists(tmp_path, monkeypatch):
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    path = tmp_path / "latency.json"
    cache = lce.LatencyCache(space.bind(input_shape=INPUT_SHAPE, num_classes=10, quantizer="bireal"), runs=3, path=path)
    seconds = cache(space.uniform(1))  # the time a new genome takes is a figure of bench/bench_lce.py
    assert 0 < seconds < 1.0
    calls = []
    real_measure = lce.measure_latency
    monkeypatch.setattr(lce, "measure_latency", lambda *a, **k: calls.append(1) or real_measure(*a, **k))
    assert cache([1, 1, 1, 1, 1, 1]) == seconds and calls == []  # same genome, as a sequence
    cache(space.uniform(0.5))
    assert len(calls) == 1 and len(cache) == 2

    reopened = lce.LatencyCache(space.bind(input_shape=INPUT_SHAPE, num_classes=10, quantizer="bireal"), path=path)
    assert space.uniform(1) in reopened and reopened(space.uniform(1)) == seconds and len(calls) == 1
    other = lce.LatencyCache(space.bind(input_shape=INPUT_SHAPE, num_classes=10, quantizer="ste"), path=path)
    assert space.uniform(1) not in other  # the key includes the quantizer


def test_latency_cache_rejects_a_corrupt_file(tmp_path):
    path = tmp_path / "latency.json"
    path.write_text("[1, 2]")
    space = lqsearch.spaces.get("vgg_small", width_multiplier=0.25)
    with pytest.raises(ValueError, match="is not a valid cache file"):
        lce.LatencyCache(space.bind(input_shape=INPUT_SHAPE, num_classes=10, quantizer="bireal"), path=path)
