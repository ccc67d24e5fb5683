"""Published cost figures of the two papers (Shen et al. 2019, Phan et al. 2020), and how to build each row with lqsearch.

Shared by tests/test_cost.py and bench/paper_costs.py (the README table).
"""
from lqsearch import spaces
from lqsearch.spaces.resnet18 import RES18_AUTO_A, RES18_AUTO_B
from lqsearch.spaces.vgg_small import VGG_AUTO_A, VGG_AUTO_B

#: (table, row, space, genome or uniform value, quantizer, build kwargs, published FLOPs, published memory bits, tolerance)
CIFAR = {"input_shape": (32, 32, 3), "num_classes": 10}
IMAGENET = {"input_shape": (224, 224, 3), "num_classes": 1000}

ROWS = [
    ("Shen et al. Table 1", "VGG-small Uniform-1x", "vgg_small", 1, None, CIFAR, 13.2e6, 7.3e6, 0.03),
    ("Shen et al. Table 1", "VGG-small Uniform-2x", "vgg_small", 2, None, CIFAR, 45.3e6, 23.7e6, 0.03),
    ("Shen et al. Table 1", "VGG-small Uniform-3x", "vgg_small", 3, None, CIFAR, 96.2e6, 49.3e6, 0.03),
    ("Shen et al. Table 1", "VGG-small Uniform-4x", "vgg_small", 4, None, CIFAR, 166e6, 84.1e6, 0.03),
    ("Shen et al. Table 1", "VGG-Auto-A", "vgg_small", VGG_AUTO_A, None, CIFAR, 11.3e6, 5.1e6, 0.03),
    ("Shen et al. Table 1", "VGG-Auto-B", "vgg_small", VGG_AUTO_B, None, CIFAR, 59.3e6, 23.4e6, 0.03),
    ("Shen et al. Table 1", "VGG-small full precision", "vgg_small", 1, "float", CIFAR, 608e6, 149e6, 0.03),
    ("Shen et al. Table 2", "ResNet-18 Uniform-1x", "resnet18", 1, None, IMAGENET, 149e6, None, 0.06),
    ("Shen et al. Table 2", "ResNet-18 Uniform-2x", "resnet18", 2, None, IMAGENET, 352e6, None, 0.06),
    ("Shen et al. Table 2", "ResNet-18 Uniform-3x", "resnet18", 3, None, IMAGENET, 607e6, None, 0.06),
    ("Shen et al. Table 2", "ResNet-18 Uniform-4x", "resnet18", 4, None, IMAGENET, 915e6, None, 0.06),
    ("Shen et al. Table 2", "Res18-Auto-A", "resnet18", RES18_AUTO_A, None, IMAGENET, 495e6, None, 0.06),
    ("Shen et al. Table 2", "Res18-Auto-B", "resnet18", RES18_AUTO_B, None, IMAGENET, 660e6, None, 0.06),
    ("Shen et al. Table 2", "ResNet-18 full precision", "resnet18", 1, "float", IMAGENET, 1820e6, None, 0.06),
    ("Phan et al. Table 1", "M1 groups=1", "mobilenet_m1", 1, None, IMAGENET, 2.13e8, None, 0.12),
    ("Phan et al. Table 1", "M1 groups=4", "mobilenet_m1", 4, None, IMAGENET, 1.63e8, None, 0.12),
    ("Phan et al. Table 1", "M1 groups=16", "mobilenet_m1", 16, None, IMAGENET, 1.50e8, None, 0.12),
    ("Phan et al. Table 1", "M2 groups=1", "mobilenet_m2", 1, None, IMAGENET, 2.13e8, None, 0.12),
    ("Phan et al. Table 1", "M2 groups=4", "mobilenet_m2", 4, None, IMAGENET, 0.67e8, None, 0.12),
    ("Phan et al. Table 1", "M2 groups=16", "mobilenet_m2", 16, None, IMAGENET, 0.30e8, None, 0.12),
    ("Phan et al. Table 1", "M3 groups=1", "mobilenet_m3", 1, None, IMAGENET, 0.87e8, None, 0.12),
    ("Phan et al. Table 1", "M3 groups=4", "mobilenet_m3", 4, None, IMAGENET, 0.37e8, None, 0.12),
    ("Phan et al. Table 1", "M3 groups=16", "mobilenet_m3", 16, None, IMAGENET, 0.24e8, None, 0.12),
]


def build_row(row):
    """Builds the model of one ROWS entry."""
    _, _, space_name, genome, quantizer, kwargs, *_ = row
    space = spaces.get(space_name)
    genome = space.uniform(genome) if isinstance(genome, (int, float)) else genome
    return space.build(genome, quantizer=quantizer, **kwargs)
