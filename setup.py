"""Installation script for lqsearch."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _version():
    namespace = {}
    exec((HERE / "lqsearch" / "_version.py").read_text(), namespace)
    return namespace["__version__"]


# One TensorFlow distribution: `tensorflow` runs on the CPU as it is, and the `gpu`
# extra adds NVIDIA's CUDA libraries to the SAME distribution (TensorFlow's own
# `and-cuda` extra), so a GPU install never holds two TensorFlows side by side.
TENSORFLOW = "tensorflow==2.15.1"

INSTALL_REQUIRES = [
    TENSORFLOW,
    "larq==0.14.0",
    "larq-zoo==2.4.0",
    "keras-tuner==1.4.8",
    "tensorflow-datasets==4.8.3",
    "tensorflow-metadata<1.14",
    "larq-compute-engine==0.16.0",
    "numpy<2",
    "grpcio",
    "matplotlib",
    "PyYAML",
    "pydantic>=2.11,<3",
    "scipy>=1.10,<2",
]

EXTRAS_REQUIRE = {
    "gpu": [TENSORFLOW.replace("tensorflow", "tensorflow[and-cuda]", 1)],
    "test": ["pytest>=7", "pytest-timeout", "pytest-xdist", "dill", "hypothesis>=6", "import-linter>=2.1", "ruff>=0.5"],
}

setup(
    name="lqsearch",
    version=_version(),
    description="Evolutionary search for accurate, cheap binary neural networks on Larq and Keras Tuner.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # The top-level recipes/ folder is installed as the package data
    # `lqsearch._recipes`, so `lqsearch recipe list` works after `pip install .`.
    packages=find_packages(include=["lqsearch", "lqsearch.*"]) + ["lqsearch._recipes"],
    package_dir={"lqsearch._recipes": "recipes"},
    package_data={"lqsearch._recipes": ["*.yaml"], "lqsearch": ["data_files/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["lqsearch=lqsearch.cli:main"]},
    license="Apache-2.0",
)
