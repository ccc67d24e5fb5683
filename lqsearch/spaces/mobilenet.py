"""Binarized MobileNet-v1 group spaces M1, M2 and M3 (Phan et al., Section 3.2.2).

Each of the 13 MobileNet layers replaces its depthwise 3x3 by a binary 3x3 conv
Cin->Cin whose group count is a gene (a divisor of Cin), followed by a binary
pointwise part. Identity shortcuts are added where shapes match; a parameter-free
average pooling carries the shortcut across a stride.
"""
from __future__ import annotations

import tensorflow as tf

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
    module = ""

    def layer_channels(self):
        """[(Cin, Cout, stride)] of the 13 layers, after the width multiplier."""
        cin = self.channels(STEM_WIDTH)
        layers = []
        for cout, stride in MOBILENET_LAYERS:
            cout = self.channels(cout)
            layers.append((cin, cout, stride))
            cin = cout
        return layers

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
        for i, (cin, cout, stride) in enumerate(self.layer_channels()):
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
        pooled = tf.keras.layers.AveragePooling2D(stride, strides=stride, padding="same", name=f"{name}_pool")(x)
    y = _blocks.binary_conv(x, cin, 3, strides=stride, groups=groups, preset=preset, name=f"{name}_conv3x3")
    y = _blocks.batch_norm(y, name=f"{name}_bn3x3")
    return tf.keras.layers.Add(name=f"{name}_add3x3")([y, pooled]), pooled


def _fp_shortcut_pointwise(y, pooled, cin, cout, groups, preset, name):
    """Binary 1x1 Cin->Cout; identity shortcut, or an FP 1x1 shortcut conv where the shape changes."""
    z = _blocks.binary_conv(y, cout, 1, preset=preset, name=f"{name}_pw")
    z = _blocks.batch_norm(z, name=f"{name}_bn_pw")
    if cin == cout:
        shortcut = y
    else:
        shortcut = _blocks.float_conv(pooled, cout, 1, groups=groups, name=f"{name}_shortcut_conv")
        shortcut = _blocks.batch_norm(shortcut, name=f"{name}_shortcut_bn")
    return tf.keras.layers.Add(name=f"{name}_add_pw")([z, shortcut])


@register_space("mobilenet_m1")
class MobileNetM1Space(_MobileNetGroupSpace):
    """Module M1: binary 3x3 group conv, binary 1x1 full conv, FP 1x1 shortcut conv on shape changes.

    Genes `layer1_groups`..`layer13_groups`: the group count of each binary 3x3
    conv, from the divisors of its input channels.

    Options:
        lce_compatible: keep only group counts with Cin/groups a multiple of 32,
            the grouped binary convs LCE accelerates.
        width_multiplier: MobileNet's alpha (scales every width).

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
    """

    module = "m1"

    def _pointwise(self, y, pooled, cin, cout, genome, preset, name):
        return _fp_shortcut_pointwise(y, pooled, cin, cout, 1, preset, name)


@register_space("mobilenet_m2")
class MobileNetM2Space(_MobileNetGroupSpace):
    """Module M2: M1 whose FP 1x1 shortcut convs also get a searched group count.

    Genes: the 13 `layerN_groups` of M1, then one `layerN_shortcut_groups` per
    shape-changing layer (1, 2, 4, 6 and 12), from the common divisors of its
    input and output channels.

    Options:
        lce_compatible: restrict the binary 3x3 group counts to LCE-accelerated ones.
        width_multiplier: MobileNet's alpha.

    References:
        - Phan, Liu, Huynh, Savvides, Cheng, Shen. Binarizing MobileNet via
          Evolution-based Searching. CVPR 2020, arXiv:2005.06305.
    """

    module = "m2"

    def _extra_genes(self):
        genes = []
        for i, (cin, cout, _) in enumerate(self.layer_channels()):
            if cin != cout:
                common = tuple(d for d in divisors(cin) if cout % d == 0)
                genes.append(Gene(f"layer{i + 1}_shortcut_groups", common, kind="groups"))
        return genes

    def _pointwise(self, y, pooled, cin, cout, genome, preset, name):
        groups = genome.get(f"{name}_shortcut_groups", 1)
        return _fp_shortcut_pointwise(y, pooled, cin, cout, groups, preset, name)


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

    def _pointwise(self, y, pooled, cin, cout, genome, preset, name):
        halves = []
        for suffix, width in (("a", cout // 2), ("b", cout - cout // 2)):
            h = _blocks.binary_conv(y, width, 1, preset=preset, name=f"{name}_pw_{suffix}")
            h = _blocks.batch_norm(h, name=f"{name}_bn_pw_{suffix}")
            if width == cin:
                h = tf.keras.layers.Add(name=f"{name}_add_pw_{suffix}")([h, y])
            halves.append(h)
        z = tf.keras.layers.Concatenate(name=f"{name}_concat")(halves)
        if cin == cout:
            z = tf.keras.layers.Add(name=f"{name}_add_pw")([z, y])
        return z
