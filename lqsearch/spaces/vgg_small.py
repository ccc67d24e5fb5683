"""VGG-small (CIFAR) with one expansion ratio per conv: Shen et al.'s width search space."""
from __future__ import annotations

from lqsearch.genome import Gene
from lqsearch.spaces import _blocks
from lqsearch.spaces.base import SearchSpace, register_space

WIDTH_RATIOS = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0)
#: (base channels, max-pool after this conv) for conv1..conv6.
VGG_SMALL_LAYERS = ((128, False), (128, True), (256, False), (256, True), (512, False), (512, True))

#: Published genomes of Shen et al., Table 1.
VGG_AUTO_A = (0.5, 2, 1, 1, 1, 0.5)
VGG_AUTO_B = (2, 2, 4, 2, 4, 0.5)


@register_space("vgg_small")
class VGGSmallSpace(SearchSpace):
    """Binary VGG-small: six 3x3 convs (128,128,M,256,256,M,512,512,M) and one FC.

    Genes `conv1`..`conv6` multiply each conv's output channels by a ratio from
    {0.25, 0.5, 1, 2, 3, 4}; `conv1` is the full-precision first layer, the
    others are binary. BatchNorm follows every conv (after its max-pool).

    Options:
        width_multiplier: scales every base width (e.g. 0.25 for CPU-sized runs).

    References:
        - Shen, Han, Xu, Wang. Searching for Accurate Binary Neural Architectures.
          ICCV Workshops 2019, arXiv:1909.07378.
        - Zhang et al., LQ-Nets (VGG-small).
    """

    default_input_shape = (32, 32, 3)
    default_num_classes = 10
    default_quantizer = "dorefa"
    analytic_cost = True

    def _make_genes(self):
        return [Gene(f"conv{i + 1}", WIDTH_RATIOS) for i in range(len(VGG_SMALL_LAYERS))]

    def _concrete(self, gene, value):
        index = int(gene.name[len("conv"):]) - 1
        return self.channels(VGG_SMALL_LAYERS[index][0], value)

    def _build(self, genome, inputs, num_classes, preset):
        x = inputs
        for i, (base, pool) in enumerate(VGG_SMALL_LAYERS):
            name = f"conv{i + 1}"
            filters = self.channels(base, genome[name])
            if i == 0:
                x = _blocks.float_conv(x, filters, 3, name=name)
            else:
                x = _blocks.binary_conv(x, filters, 3, preset=preset, name=name)
            if pool:
                x = _blocks.max_pool(x, 2, name=f"pool{i + 1}")
            x = _blocks.batch_norm(x, name=f"bn{i + 1}")
        return _blocks.classifier(x, num_classes, flatten=True)
