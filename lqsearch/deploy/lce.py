"""Larq Compute Engine deployment: conversion, op counting, fallback report, latency.

`convert(model)` turns a Keras model into an LCE `.tflite` flatbuffer.
`conversion_report(model, flatbuffer)` counts the `LceBconv2d` ops and names
every binary conv layer that stayed float, with the reason. `measure_latency`
times single-image inference in the LCE interpreter (median of several runs,
one thread, `use_indirect_bgemm=True`: on x86 the default binary kernel is
slower than float, and grouped binary convs run only with indirect bgemm).
`LatencyCache` turns that into a cached `genome -> seconds` function for a
latency-aware search objective.

Facts of LCE 0.16 this module relies on (see design.md, section 10):

- a binary conv becomes `LceBconv2d` only when its input quantizer gives +-1
  (sign-like quantizers); DoReFa's {0, 1} activations stay float convs;
- a grouped binary conv converts only when Cin/groups is a multiple of 32;
  otherwise the converter logs an error and silently keeps a float conv;
- binary convs of a freshly initialised model often produce exact zeros, whose
  sign differs between Keras and LCE; compare outputs on trained weights (or
  with non-trivial BatchNorm statistics).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import larq_compute_engine as lce
import numpy as np
import tensorflow as tf
from larq_compute_engine.mlir.python import converter
from larq_compute_engine.tflite.python.interpreter import Interpreter

from lqsearch import io
from lqsearch.checks import check_int
from lqsearch.quantizers import LCE_GROUP_CHANNELS
from lqsearch.spaces import BoundSpace

__all__ = [
    "convert",
    "list_ops",
    "count_ops",
    "binary_conv_layers",
    "ConversionReport",
    "conversion_report",
    "measure_latency",
    "compare_latency",
    "LatencyCache",
    "BCONV_OP",
]

#: The custom op of an accelerated binary convolution.
BCONV_OP = "LceBconv2d"
#: Input quantizers LCE recognises as +-1 binarization (class or function names).
SIGN_QUANTIZERS = frozenset({"SteSign", "ApproxSign", "SwishSign", "ste_sign", "approx_sign", "swish_sign"})
#: Converter log lines not passed on: grouped convs that stay float (the report explains
#: them per layer) and TF's warning about the SavedModel it reloads.
_KNOWN_CONVERTER_NOISE = ("Invalid binary grouped convolution", "Compiled the loaded model, but the compiled metrics")
#: How the latency is measured; recorded next to every figure.
LATENCY_SETTINGS = {"interpreter": "larq_compute_engine", "num_threads": 1, "use_indirect_bgemm": True,
                    "use_xnnpack": False, "batch": 1, "statistic": "median"}


# -- conversion ----------------------------------------------------------------
def convert(model: tf.keras.Model, *, fast: bool = False) -> bytes:
    """Converts a Keras model to an LCE `.tflite` flatbuffer.

    Arguments:
        model: a built `tf.keras.Model` with a fixed input shape.
        fast: `False` uses `larq_compute_engine.convert_keras_model` (through a
            SavedModel round trip); `True` converts the frozen graph directly, as
            that function's own fallback does (an order of magnitude faster), for
            latency measurement inside a search. Both give the same ops.

    Returns:
        The flatbuffer bytes. The batch size is 1.

    Raises:
        ValueError: if the model cannot be converted.
    """
    with _converter_log_filtered():
        try:
            if fast:
                return _convert_frozen_graph(model)
            return lce.convert_keras_model(model)
        except (ValueError, TypeError, RuntimeError) as error:
            raise ValueError(f"LCE could not convert model {model.name!r}: {error}") from error


def _convert_frozen_graph(model: tf.keras.Model) -> bytes:
    function = converter.concrete_function_from_keras_model(model)
    frozen = converter.convert_variables_to_constants_v2(function, lower_control_flow=False)
    inputs = [tensor for tensor in frozen.inputs if tensor.dtype != tf.dtypes.resource]
    return converter.convert_graphdef_to_tflite_flatbuffer(
        frozen.graph.as_graph_def().SerializeToString(),
        [converter.get_tensor_name(tensor) for tensor in inputs],
        [converter.DataType.Name(tensor.dtype.as_datatype_enum) for tensor in inputs],
        [[1] + tensor.shape.as_list()[1:] for tensor in inputs],
        [converter.get_tensor_name(tensor) for tensor in frozen.outputs],
        False,
        "arm",
        None,
    )


@contextlib.contextmanager
def _converter_log_filtered() -> Iterator[None]:
    """Captures the converter's native stderr; passes on everything but the grouped-conv
    fallback errors, which `conversion_report` explains per layer instead."""
    sys.stderr.flush()
    try:
        saved_fd = os.dup(2)
    except OSError:  # no stderr to capture
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sink.seek(0)
            lines = sink.read().decode("utf-8", errors="replace").splitlines()
            kept = [line for line in lines if not any(known in line for known in _KNOWN_CONVERTER_NOISE)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


# -- reading a flatbuffer ----------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One operator of a flatbuffer: its name and the names of its input and output tensors."""

    name: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]


def list_ops(flatbuffer: bytes) -> List[Op]:
    """The operators of `flatbuffer`'s main graph, in execution order.

    Uses TFLite's interpreter to read the graph (no tensors are allocated, so
    LCE's custom ops need no kernels here).
    """
    interpreter = tf.lite.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    names = {detail["index"]: detail["name"] for detail in interpreter.get_tensor_details()}

    def tensor_names(indices) -> Tuple[str, ...]:
        return tuple(names.get(int(i), "") for i in indices if int(i) >= 0)

    return [
        Op(detail["op_name"], tensor_names(detail["inputs"]), tensor_names(detail["outputs"]))
        for detail in interpreter._get_ops_details()  # noqa: SLF001 (the only per-op listing in TF 2.15)
    ]


def count_ops(flatbuffer: bytes) -> Counter:
    """`Counter` of operator names in `flatbuffer`, e.g. `count_ops(fb)["LceBconv2d"]`."""
    return Counter(op.name for op in list_ops(flatbuffer))


# -- the fallback report -----------------------------------------------------------
def binary_conv_layers(model: tf.keras.Model) -> List[tf.keras.layers.Layer]:
    """The conv layers larq counts as binary: 1-bit input quantizer and 1-bit kernel quantizer."""
    return [layer for layer in _all_layers(model) if _is_binary_conv(layer)]


def _all_layers(model: tf.keras.Model) -> Iterator[tf.keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def _is_binary_conv(layer) -> bool:
    if not isinstance(layer, tf.keras.layers.Conv2D):
        return False
    precisions = [getattr(getattr(layer, attribute, None), "precision", None)
                  for attribute in ("input_quantizer", "kernel_quantizer")]
    return precisions == [1, 1]


def _quantizer_name(quantizer) -> str:
    return getattr(quantizer, "__name__", type(quantizer).__name__)


def _expected_fallback_reason(layer) -> Optional[str]:
    """Why LCE keeps this binary conv in float, from its settings; None when it should convert."""
    quantizer = _quantizer_name(layer.input_quantizer)
    if quantizer not in SIGN_QUANTIZERS:
        return f"input quantizer {quantizer} is not a +-1 sign quantizer, so LCE cannot binarize its activations"
    groups = int(getattr(layer, "groups", 1) or 1)
    channels_per_group = int(layer.kernel.shape[-2])  # kernel: (kh, kw, Cin / groups, Cout)
    if groups > 1 and channels_per_group % LCE_GROUP_CHANNELS:
        return (f"grouped conv with groups={groups}: Cin/groups = {channels_per_group} is not a multiple "
                f"of {LCE_GROUP_CHANNELS}")
    return None


@dataclass
class ConversionReport:
    """How the binary conv layers of a Keras model came out of the LCE converter.

    Attributes:
        binary_layers: names of the Keras conv layers with 1-bit inputs and kernels.
        bconv_ops: number of `LceBconv2d` ops in the flatbuffer.
        fallbacks: binary layer name -> why it stayed a float conv.
        attribution: `"tensor names"` when ops were matched to layers by name,
            `"layer settings"` when the fallbacks were predicted from each layer's
            quantizer and groups because name matching was ambiguous.
        op_counts: every op type in the flatbuffer and how often it occurs.
    """

    binary_layers: List[str]
    bconv_ops: int
    fallbacks: Dict[str, str]
    attribution: str
    op_counts: Dict[str, int] = field(default_factory=dict)

    @property
    def all_binary(self) -> bool:
        """True when every binary conv layer runs as an `LceBconv2d`."""
        return not self.fallbacks and self.bconv_ops == len(self.binary_layers)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A few human lines: the count comparison, then the float fallbacks grouped by reason."""
        return "\n".join([f"{self.bconv_ops} {BCONV_OP} ops for {len(self.binary_layers)} binary conv layers"]
                         + [f"  stayed float: {layers}: {reason}" for reason, layers in _by_reason(self.fallbacks)])


def _by_reason(fallbacks: Mapping[str, str]) -> List[Tuple[str, str]]:
    """[(reason, "layer, layer, ...")] in first-seen order."""
    grouped: Dict[str, List[str]] = {}
    for name, reason in fallbacks.items():
        grouped.setdefault(reason, []).append(name)
    return [(reason, ", ".join(names)) for reason, names in grouped.items()]


def conversion_report(model: tf.keras.Model, flatbuffer: bytes) -> ConversionReport:
    """Compares the binary conv layers of `model` with the `LceBconv2d` ops of its conversion.

    Each `LceBconv2d` is matched to a layer through the names of its tensors,
    which carry the Keras layer name (`model/layer/...`). When that matching does
    not account for every op, the fallbacks are predicted from each layer's
    settings instead (non-sign input quantizer, or Cin/groups not a multiple of 32).

    Arguments:
        model: the Keras model that was converted.
        flatbuffer: its LCE conversion.

    Returns:
        A `ConversionReport`.
    """
    layers = binary_conv_layers(model)
    ops = list_ops(flatbuffer)
    bconvs = [op for op in ops if op.name == BCONV_OP]
    names = [layer.name for layer in layers]
    matched = {_layer_of(op, names) for op in bconvs} - {None}
    if len(matched) == len(bconvs):
        fallbacks = {layer.name: _expected_fallback_reason(layer) or "the converter kept it as a float conv"
                     for layer in layers if layer.name not in matched}
        attribution = "tensor names"
    else:
        fallbacks = {layer.name: reason for layer in layers if (reason := _expected_fallback_reason(layer))}
        attribution = "layer settings"
    return ConversionReport(names, len(bconvs), fallbacks, attribution, dict(Counter(op.name for op in ops)))


def _layer_of(op: Op, layer_names: Sequence[str]) -> Optional[str]:
    """The binary layer an op belongs to: the first layer name found as a path segment of
    its first input tensor (the quantized activations), else of its outputs."""
    for tensor in op.inputs[:1] + op.outputs:
        segments = set(re.split(r"[/;]", tensor))
        found = [name for name in layer_names if name in segments]
        if len(found) == 1:
            return found[0]
    return None


# -- latency -------------------------------------------------------------------------
def measure_latency(flatbuffer: bytes, *, runs: int = 20, warmup: int = 3, num_threads: int = 1,
                    use_indirect_bgemm: bool = True) -> float:
    """Median single-image inference time of `flatbuffer` in the LCE interpreter, in seconds.

    Arguments:
        flatbuffer: an LCE `.tflite` model with one float input.
        runs: timed runs; the median is returned.
        warmup: untimed runs first (allocation, caches).
        num_threads: interpreter threads; 1 gives the most stable figures.
        use_indirect_bgemm: LCE's indirect BGEMM binary kernel, the fast one on x86
            and the only one that runs grouped binary convs.

    Returns:
        Seconds per image (median).

    Raises:
        ValueError: if `runs` < 1.
    """
    check_int("runs", runs, minimum=1)

    interpreter = Interpreter(flatbuffer, num_threads=num_threads, use_indirect_bgemm=use_indirect_bgemm)
    image = np.random.RandomState(0).uniform(size=interpreter.input_shapes[0]).astype(np.float32)
    for _ in range(warmup):
        interpreter.predict(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.predict(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_latency(binary_model: tf.keras.Model, float_model: tf.keras.Model, *, lce_binary: bool,
                    runs: int = 20, binary_flatbuffer: Optional[bytes] = None) -> Dict[str, Any]:
    """Measures a binary model and its float twin in the LCE interpreter.

    Arguments:
        binary_model: the binary model.
        float_model: the same architecture with full-precision layers
            (`space.build(genome, quantizer="float")`).
        lce_binary: whether the binary model's activations are +-1 (see
            `lqsearch.quantizers.get(name).lce_binary`). When False no speed-up is
            claimed: LCE runs those layers as float convolutions.
        runs: timed runs per model.
        binary_flatbuffer: the binary model's conversion, if already done.

    Returns:
        `{"binary_s", "float_s", "speedup", "lce_binary_activations", "note", "settings"}`;
        `speedup` is float/binary, or None when `lce_binary` is False.
    """
    binary_flatbuffer = binary_flatbuffer or convert(binary_model, fast=True)
    binary_s = measure_latency(binary_flatbuffer, runs=runs)
    float_s = measure_latency(convert(float_model, fast=True), runs=runs)
    note = None
    if not lce_binary:
        note = ("activations are not +-1 (e.g. dorefa's {0, 1}), so LCE runs the binary layers as float "
                "convolutions: no binary speed-up is claimed")
    return {
        "binary_s": binary_s,
        "float_s": float_s,
        "speedup": (float_s / binary_s) if lce_binary else None,
        "lce_binary_activations": bool(lce_binary),
        "note": note,
        "settings": dict(LATENCY_SETTINGS, runs=runs),
    }


class LatencyCache:
    """Measured LCE latency of a genome, cached: a latency-aware alternative to FLOPs.

    Calling the cache with a genome builds the binary model, converts it with the
    fast path of `convert` and returns the median single-image latency in seconds.
    Each genome is measured once; results live in memory and, when `path` is
    given, in a JSON file shared across runs and processes (re-read and merged on
    every write). A small CPU-sized model takes well under 2 s per new genome.

    Arguments:
        space: a `BoundSpace` (`space.bind(input_shape=..., num_classes=..., quantizer=...)`).
        runs: timed runs per genome (median).
        warmup: untimed runs per genome.
        path: optional JSON file to persist the measurements.

    Example:
        ```python
        latency = LatencyCache(space.bind(input_shape=(32, 32, 3), num_classes=10, quantizer="bireal"))
        seconds = latency(space.uniform(1))
        ```
    """

    def __init__(self, space: BoundSpace, *, runs: int = 10, warmup: int = 2, path: Optional[os.PathLike] = None):
        check_int("runs", runs, minimum=1)
        self.bound = space
        self.space = space.space
        self.input_shape = tuple(int(d) for d in space.input_shape)
        self.num_classes = int(space.num_classes)
        self.quantizer = space.quantizer
        self.runs = runs
        self.warmup = warmup
        self.path = Path(path) if path is not None else None
        self._entries: Dict[str, float] = self._read_file()

    def key(self, genome: Mapping[str, Any]) -> str:
        """The cache key: space, build arguments, measurement settings and the validated genome."""
        return json.dumps({
            "space": self.space.get_config(), "input_shape": list(self.input_shape),
            "num_classes": self.num_classes, "quantizer": self.quantizer,
            "settings": LATENCY_SETTINGS, "genome": self.space.genome(genome),
        }, sort_keys=True)

    def __contains__(self, genome: Mapping[str, Any]) -> bool:
        return self.key(genome) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, genome: Mapping[str, Any]) -> float:
        """Seconds per image for `genome` (measured once, then cached)."""
        key = self.key(genome)
        if key not in self._entries:
            model = self.bound.build(genome)
            self._entries[key] = measure_latency(convert(model, fast=True), runs=self.runs, warmup=self.warmup)
            self._write_file(key)
        return self._entries[key]

    def _read_file(self) -> Dict[str, float]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            return {str(k): float(v) for k, v in data["entries"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"Latency cache {self.path} is not a valid cache file ({error}); "
                             "delete it or pass another path=.") from error

    def _write_file(self, key: str) -> None:
        if self.path is None:
            return
        merged = {**self._read_file(), key: self._entries[key]}
        self._entries.update(merged)
        io.write_json(self.path, {"format": "lqsearch-latency-cache/1", "entries": merged}, indent=1)
