"""ResNet-18 with per-stage and per-block-middle expansion ratios: Shen et al.'s ImageNet space."""
from __future__ import annotations

from lqsearch.genome import Gene
from lqsearch.spaces import _blocks
from lqsearch.spaces.base import SearchSpace, register_space
from lqsearch.spaces.vgg_small import WIDTH_RATIOS

STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2

#: Published genomes of Shen et al., Table 2 (the authors' ratio-code order).
RES18_AUTO_A = (2, 4, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4)
RES18_AUTO_B = (3, 4, 4, 3, 1, 4, 4, 4, 3, 3, 3, 3)


@register_space("resnet18")
class ResNet18Space(SearchSpace):
    """Binary ResNet-18: 12 genes in the order of the authors' published ratio code.

    Genes `stage1`..`stage4` multiply the stage output widths 64/128/256/512
    (the stem takes stage 1's width); `block1_mid`..`block8_mid` multiply the
    middle width of each basic block. Every conv is binary except the stem and
    the classifier; downsample shortcuts are binary 1x1 convs.

    Options:
        stem: `"auto"` (ImageNet stem for inputs of 64 px or more), `"imagenet"`
            (7x7/2 conv + 3x3/2 max-pool) or `"cifar"` (3x3/1 conv).
        width_multiplier: scales every base width.

    References:
        - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
          ICCV Workshops 2019, arXiv:1909.07378.
        - He et al., Deep Residual Learning for Image Recognition.
    """

    default_input_shape = (224, 224, 3)
    default_num_classes = 1000
    default_quantizer = "dorefa"
    option_defaults = {"width_multiplier": 1.0, "stem": "auto"}
    analytic_cost = True

    def _make_genes(self):
        if self.options["stem"] not in ("auto", "imagenet", "cifar"):
            raise ValueError(
                f"stem must be 'auto', 'imagenet' or 'cifar', got {self.options['stem']!r}."
            )
        stages = [Gene(f"stage{s + 1}", WIDTH_RATIOS) for s in range(len(STAGE_WIDTHS))]
        blocks = [Gene(f"block{b + 1}_mid", WIDTH_RATIOS) for b in range(len(STAGE_WIDTHS) * BLOCKS_PER_STAGE)]
        return stages + blocks

    def _concrete(self, gene, value):
        if gene.name.startswith("stage"):
            return self.channels(STAGE_WIDTHS[int(gene.name[len("stage"):]) - 1], value)
        block = int(gene.name[len("block"):].split("_")[0])
        return self.channels(STAGE_WIDTHS[(block - 1) // BLOCKS_PER_STAGE], value)

    def _stem(self, inputs, filters):
        stem = self.options["stem"]
        if stem == "auto":
            stem = "imagenet" if min(inputs.shape[1:3]) >= 64 else "cifar"
        if stem == "imagenet":
            x = _blocks.float_conv(inputs, filters, 7, strides=2, name="stem_conv")
            x = _blocks.batch_norm(x, name="stem_bn")
            return _blocks.max_pool(x, 3, strides=2, padding="same", name="stem_pool")
        x = _blocks.float_conv(inputs, filters, 3, name="stem_conv")
        return _blocks.batch_norm(x, name="stem_bn")

    def _build(self, genome, inputs, num_classes, preset):
        stage_widths = [self.channels(w, genome[f"stage{s + 1}"]) for s, w in enumerate(STAGE_WIDTHS)]
        x = self._stem(inputs, stage_widths[0])
        block = 0
        for s, base in enumerate(STAGE_WIDTHS):
            for b in range(BLOCKS_PER_STAGE):
                block += 1
                mid = self.channels(base, genome[f"block{block}_mid"])
                strides = 2 if (s > 0 and b == 0) else 1
                x = _basic_block(x, mid, stage_widths[s], strides, preset, f"block{block}")
        return _blocks.classifier(x, num_classes)


def _basic_block(x, mid: int, filters: int, strides: int, preset, name: str):
    """Two binary 3x3 convs (Cin->mid->filters) with BN, plus an identity or binary 1x1 shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _blocks.binary_conv(x, filters, 1, strides=strides, preset=preset, name=f"{name}_shortcut_conv")
        shortcut = _blocks.batch_norm(shortcut, name=f"{name}_shortcut_bn")
    y = _blocks.binary_conv(x, mid, 3, strides=strides, preset=preset, name=f"{name}_conv1")
    y = _blocks.batch_norm(y, name=f"{name}_bn1")
    y = _blocks.binary_conv(y, filters, 3, preset=preset, name=f"{name}_conv2")
    y = _blocks.batch_norm(y, name=f"{name}_bn2")
    return _blocks.add([y, shortcut], name=f"{name}_add")
