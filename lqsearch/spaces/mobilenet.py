"""Binarized MobileNet-v1 group spaces M1, M2 and M3 (Phan et al., Section 3.2.2).

Each of the 13 MobileNet layers replaces its depthwise 3x3 by a binary 3x3 conv
Cin->Cin whose group count is a gene (a divisor of Cin), followed by a binary
pointwise part. Identity shortcuts are added where shapes match; a parameter-free
average pooling carries the shortcut across a stride.
"""
from __future__ import annotations

import functools
import math

from lqsearch.checks import check_bool
from lqsearch.genome import Gene
from lqsearch.quantizers import LCE_GROUP_CHANNELS
from lqsearch.spaces import _blocks
from lqsearch.spaces.base import SearchSpace, register_space

STEM_WIDTH = 32
#: (output channels, stride) of MobileNet-v1's 13 separable layers.
MOBILENET_LAYERS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def divisors(n: int) -> tuple:
    """All divisors of `n`, ascending."""
    return tuple(d for d in range(1, n + 1) if n % d == 0)


class _MobileNetGroupSpace(SearchSpace):
    """Shared machinery of M1/M2/M3; `module` selects the pointwise part."""

    default_input_shape = (224, 224, 3)
    default_num_classes = 1000
    default_quantizer = "bireal"
    option_defaults = {"width_multiplier": 1.0, "lce_compatible": False}
    analytic_cost = True
    module = ""

    def layer_channels(self):
        """[(Cin, Cout, stride)] of the 13 layers, after the width multiplier."""
        return list(self._layer_channels)

    @functools.cached_property
    def _layer_channels(self) -> tuple:
        cin = self.channels(STEM_WIDTH)
        layers = []
        for cout, stride in MOBILENET_LAYERS:
            cout = self.channels(cout)
            layers.append((cin, cout, stride))
            cin = cout
        return tuple(layers)

    def _group_values(self, cin: int) -> tuple:
        values = divisors(cin)
        if self.options["lce_compatible"]:
            values = tuple(g for g in values if (cin // g) % LCE_GROUP_CHANNELS == 0) or (1,)
        return values

    def _make_genes(self):
        check_bool("lce_compatible", self.options["lce_compatible"])
        genes = [
            Gene(f"layer{i + 1}_groups", self._group_values(cin), kind="groups")
            for i, (cin, _, _) in enumerate(self.layer_channels())
        ]
        return genes + self._extra_genes()

    def _extra_genes(self):
        return []

    def _build(self, genome, inputs, num_classes, preset):
        x = _blocks.float_conv(inputs, self.channels(STEM_WIDTH), 3, strides=2, name="stem_conv")
        x = _blocks.batch_norm(x, name="stem_bn")
        for i, (cin, cout, stride) in enumerate(self._layer_channels):
            name = f"layer{i + 1}"
            y, pooled = _grouped_3x3(x, stride, genome[f"{name}_groups"], preset, name)
            x = self._pointwise(y, pooled, cin, cout, genome, preset, name)
        return _blocks.classifier(x, num_classes)

    def _pointwise(self, y, pooled, cin, cout, genome, preset, name):
        raise NotImplementedError


def _grouped_3x3(x, stride: int, groups: int, preset, name: str):
    """Binary 3x3 group conv Cin->Cin + BN, with an (average-pooled) identity shortcut.

    Returns:
        (output, the block input pooled to the output resolution).
    """
    cin = x.shape[-1]
    pooled = x
    if stride != 1:
        pooled = _blocks.average_pool(x, stride, padding="same", name=f"{name}_pool")
    y = _blocks.binary_conv(x, cin, 3, strides=stride, groups=groups, preset=preset, name=f"{name}_conv3x3")
    y = _blocks.batch_norm(y, name=f"{name}_bn3x3")
    return _blocks.add([y, pooled], name=f"{name}_add3x3"), pooled


def _fp_shortcut_pointwise(y, pooled, cin, cout, groups, preset, name, *, fp_shortcut: bool):
    """Binary 1x1 Cin->Cout + BN; an identity shortcut where the shape is kept, an FP 1x1 shortcut conv
    (with `groups`) where `fp_shortcut`, else none."""
    z = _blocks.binary_conv(y, cout, 1, preset=preset, name=f"{name}_pw")
    z = _blocks.batch_norm(z, name=f"{name}_bn_pw")
    if cin == cout:
        return _blocks.add([z, y], name=f"{name}_add_pw")
    if not fp_shortcut:
        return z
    shortcut = _blocks.float_conv(pooled, cout, 1, groups=groups, name=f"{name}_shortcut_conv")
    shortcut = _blocks.batch_norm(shortcut, name=f"{name}_shortcut_bn")
    return _blocks.add([z, shortcut], name=f"{name}_add_pw")


class _FPShortcutSpace(_MobileNetGroupSpace):
    """M1 and M2: a binary 1x1 pointwise conv, with a full-precision 1x1 shortcut conv where the shape changes."""

    option_defaults = {**_MobileNetGroupSpace.option_defaults, "fp_shortcut_at_layer1": True}

    def fp_shortcut_layers(self) -> tuple:
        """The (1-based) layers with a full-precision 1x1 shortcut conv: those that shrink the spatial
        size, and those that change the channel count at stride 1 (layer 1) with `fp_shortcut_at_layer1`."""
        return self._fp_shortcut_layers

    @functools.cached_property
    def _fp_shortcut_layers(self) -> tuple:
        return tuple(
            i + 1 for i, (cin, cout, stride) in enumerate(self._layer_channels)
            if cin != cout and (stride != 1 or self.options["fp_shortcut_at_layer1"])
        )

    def _make_genes(self):
        check_bool("fp_shortcut_at_layer1", self.options["fp_shortcut_at_layer1"])
        return super()._make_genes()

    def _shortcut_groups(self, genome, name) -> int:
        return 1

    def _pointwise(self, y, pooled, cin, cout, genome, preset, name):
        return _fp_shortcut_pointwise(y, pooled, cin, cout, self._shortcut_groups(genome, name), preset, name,
                                      fp_shortcut=int(name[len("layer"):]) in self._fp_shortcut_layers)


@register_space("mobilenet_m1")
class MobileNetM1Space(_FPShortcutSpace):
    """Module M1: binary 3x3 group conv, binary 1x1 full conv, FP 1x1 shortcut conv on shape changes.

    Genes `layer1_groups`..`layer13_groups`: the group count of each binary 3x3
    conv, from the divisors of its input channels.

    Full-precision layers: the stem conv, the classifier, and a 1x1 shortcut conv
    (after a 2x2 average pooling) in layers 2, 4, 6 and 12, where the spatial size
    shrinks, as Phan et al.'s text says ("a real 1x1 full conv follows when there
    is a spatial dimension shrinkage"); by default also one in layer 1 (32 -> 64
    channels at stride 1, which no identity can bypass). With it, the uniform rows
    of their Table 1 match the published FLOPs (groups 1 / 4 / 16: 2.156e8 / 1.654e8
    / 1.529e8 against 2.13e8 / 1.63e8 / 1.50e8 at 224x224); without it
    (`fp_shortcut_at_layer1=False`), layer 1's pointwise conv has no shortcut and
    the network has 25.7M FP MACs fewer (1.899e8 / 1.398e8 / 1.272e8).

    Options:
        lce_compatible: keep only group counts with Cin/groups a multiple of 32,
            the grouped binary convs LCE accelerates.
        width_multiplier: MobileNet's alpha (scales every width).
        fp_shortcut_at_layer1: give layer 1 a full-precision 1x1 shortcut conv
            (default True, the reading that matches the published FLOPs).

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
    """

    module = "m1"


@register_space("mobilenet_m2")
class MobileNetM2Space(_FPShortcutSpace):
    """Module M2: M1 whose FP 1x1 shortcut convs also get a searched group count.

    Genes: the 13 `layerN_groups` of M1, then one `layerN_shortcut_groups` per
    full-precision shortcut conv, from the common divisors of its input and output
    channels: layers 1, 2, 4, 6 and 12 by default, 2, 4, 6 and 12 with
    `fp_shortcut_at_layer1=False`.

    Phan et al. write that M2 has "four full-precision 1x1 convolutions", i.e. only
    where the spatial size shrinks (layers 2, 4, 6, 12): that is
    `fp_shortcut_at_layer1=False`. The default keeps a fifth one in layer 1 (32 -> 64
    channels at stride 1), because that reading reproduces their Table 1 at groups
    1 and 4 (2.156e8 and 0.691e8 FLOPs at 224x224, published 2.13e8 and 0.67e8),
    where the four-conv reading gives 1.899e8 and 0.627e8; at groups=16 the
    four-conv reading is closer (0.309e8, the default 0.325e8, published 0.30e8).

    Options:
        lce_compatible: restrict the binary 3x3 group counts to LCE-accelerated ones.
        width_multiplier: MobileNet's alpha.
        fp_shortcut_at_layer1: give layer 1 a full-precision 1x1 shortcut conv and its
            group gene (default True; False is the text's "four" FP 1x1 convs).

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
    """

    module = "m2"

    def _extra_genes(self):
        channels = self.layer_channels()
        genes = []
        for layer in self.fp_shortcut_layers():
            cin, cout, _ = channels[layer - 1]
            common = tuple(d for d in divisors(cin) if cout % d == 0)
            genes.append(Gene(f"layer{layer}_shortcut_groups", common, kind="groups"))
        return genes

    def _shortcut_groups(self, genome, name) -> int:
        return genome.get(f"{name}_shortcut_groups", 1)


@register_space("mobilenet_m3")
class MobileNetM3Space(_MobileNetGroupSpace):
    """Module M3: two binary 1x1 convs Cin->Cout/2, concatenated; no full-precision 1x1 convs.

    Each half gets the identity shortcut when it has Cin channels (the doubling
    layers); otherwise the concatenation gets it when Cin == Cout.

    Options:
        lce_compatible: restrict the binary 3x3 group counts to LCE-accelerated ones.
        width_multiplier: MobileNet's alpha.

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
    """

    module = "m3"

    def _make_genes(self):
        narrowest = min(cout for _, cout, _ in self.layer_channels())
        if narrowest < 2:
            minimum = min(MOBILENET_LAYERS)[0]
            raise ValueError(
                f"mobilenet_m3: width_multiplier={self.options['width_multiplier']!r} leaves a layer with "
                f"{narrowest} output channel, which M3 cannot split into two halves; use width_multiplier >= "
                f"{math.ceil(1500 / minimum) / 1000:g}.")
        return super()._make_genes()

    def _pointwise(self, y, pooled, cin, cout, genome, preset, name):
        halves = []
        for suffix, width in (("a", cout // 2), ("b", cout - cout // 2)):
            h = _blocks.binary_conv(y, width, 1, preset=preset, name=f"{name}_pw_{suffix}")
            h = _blocks.batch_norm(h, name=f"{name}_bn_pw_{suffix}")
            if width == cin:
                h = _blocks.add([h, y], name=f"{name}_add_pw_{suffix}")
            halves.append(h)
        z = _blocks.concatenate(halves, name=f"{name}_concat")
        if cin == cout:
            z = _blocks.add([z, y], name=f"{name}_add_pw")
        return z
