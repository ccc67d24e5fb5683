"""Tiny search spaces for tests and benchmarks: seconds to build and train, not registered."""
import tensorflow as tf

from lqsearch.genome import Gene
from lqsearch.spaces import _blocks
from lqsearch.spaces.base import SearchSpace

__all__ = ["TinyGroupedSpace"]


class TinyGroupedSpace(SearchSpace):
    """A float stem, two binary 3x3 convs with width and group genes, and a grouped float 1x1 shortcut.

    Genes: `conv2` (width ratio 0.5 or 1 of 16 channels), `conv2_groups` (1, 2, 4),
    `conv3_groups` (1, 2, 8), `short_groups` (1, 4). Every kind of weight the
    supernet shares appears once: first channels, block-diagonal groups, a grouped
    full-precision conv, BatchNorm and a dense classifier.
    """

    name = "tiny_grouped"
    default_input_shape = (8, 8, 3)
    default_quantizer = "bireal"

    def _make_genes(self):
        return [Gene("conv2", (0.5, 1.0)), Gene("conv2_groups", (1, 2, 4), kind="groups"),
                Gene("conv3_groups", (1, 2, 8), kind="groups"), Gene("short_groups", (1, 4), kind="groups")]

    def _concrete(self, gene, value):
        return int(value) if gene.kind == "groups" else self.channels(16, value)

    def _build(self, genome, inputs, num_classes, preset):
        table = dict(self.layer_table(genome))
        x = _blocks.batch_norm(_blocks.float_conv(inputs, 16, 3, name="conv1"), name="bn1")
        y = _blocks.binary_conv(x, table["conv2"], 3, groups=table["conv2_groups"], preset=preset, name="conv2")
        y = _blocks.batch_norm(y, name="bn2")
        y = _blocks.binary_conv(y, 16, 3, groups=table["conv3_groups"], preset=preset, name="conv3")
        shortcut = _blocks.float_conv(x, 16, 1, groups=table["short_groups"], name="shortcut")
        y = tf.keras.layers.Add(name="add")([_blocks.batch_norm(y, name="bn3"), shortcut])
        return _blocks.classifier(y, num_classes)
