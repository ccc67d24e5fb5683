"""Draw the embedded Fashion-MNIST sample shipped in `lqsearch/data_files/`.

Usage (from the repository root, with `dataset-fashion-mnist` installed):

    python tools/make_embedded_sample.py

It reads the four IDX files of the Debian package `dataset-fashion-mnist`,
draws a stratified sample with a fixed seed (300 train and 100 test images
per class by default), and writes:

- `lqsearch/data_files/fashion_mnist_sample.npz`: uint8 arrays x_train
  (N, 28, 28), y_train (N,), x_test, y_test, zip-compressed with fixed
  timestamps so the same inputs give the same bytes;
- `lqsearch/data_files/PROVENANCE.md`: source package and version, sha256 of
  the source files and of the output, seed and counts.

Running it again with the same arguments rewrites identical files.
"""
import argparse
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from lqsearch.data import readers  # noqa: E402

DEFAULT_SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUTPUT_DIR = REPO_ROOT / "lqsearch" / "data_files"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def draw_indices(labels, per_class, rng):
    """Pick `per_class` random indices of every class, without replacement.

    Arguments:
        labels: int array (N,).
        per_class: number of examples to keep per class.
        rng: a `numpy.random.Generator`.

    Returns:
        The sorted indices.
    """
    picks = [rng.choice(np.flatnonzero(labels == label), size=per_class, replace=False)
             for label in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def draw_sample(arrays, *, train_per_class, test_per_class, seed):
    """Draw the stratified sample from the full Fashion-MNIST arrays.

    Arguments:
        arrays: dict from `lqsearch.readers.read_fashion_mnist_dir`.
        train_per_class, test_per_class: images kept per class and split.
        seed: seed of `numpy.random.default_rng`; train is drawn before test.

    Returns:
        A dict of uint8 arrays x_train (N, 28, 28), y_train, x_test, y_test.
    """
    rng = np.random.default_rng(seed)
    sample = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        keep = draw_indices(arrays[f"y_{split}"], per_class, rng)
        sample[f"x_{split}"] = arrays[f"x_{split}"][keep, :, :, 0].astype(np.uint8)
        sample[f"y_{split}"] = arrays[f"y_{split}"][keep].astype(np.uint8)
    return sample


def write_npz(path, arrays):
    """Write arrays like `np.savez_compressed`, but with fixed zip timestamps.

    Arguments:
        path: output file.
        arrays: dict name -> numpy array.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def sha256(path):
    """Return the hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def debian_version(package):
    """Return the installed version of a Debian package, or "unknown"."""
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def provenance_text(*, source_dir, sample, seed, train_per_class, test_per_class, npz_path):
    """Render PROVENANCE.md."""
    sources = "\n".join(
        f"| `{name}` | `{sha256(Path(source_dir) / name)}` |"
        for name in readers.FASHION_MNIST_FILES.values())
    classes = ", ".join(f"{index} {name}" for index, name in enumerate(CLASS_NAMES))
    num_train, num_test = len(sample["y_train"]), len(sample["y_test"])
    return f"""# Provenance of `{npz_path.name}`

A small, stratified, real sample of Fashion-MNIST (Zalando SE, MIT license:
see `LICENSE-fashion-mnist.txt`), read by `lqsearch.data.load_dataset("embedded")`
for the offline quickstart and the tests.

- Source package: Debian `{DEBIAN_PACKAGE}`, version `{debian_version(DEBIAN_PACKAGE)}`
  (upstream: https://github.com/zalandoresearch/fashion-mnist).
- Source files: `{source_dir}/` (sha256 below).
- Command: `python tools/make_embedded_sample.py --seed {seed}
  --train-per-class {train_per_class} --test-per-class {test_per_class}`.
- Draw: `numpy.random.default_rng({seed})`; for each class 0..9 in turn, pick
  images without replacement, train split first, then test; the picked images
  keep their original order.
- Train: {num_train} images ({train_per_class} per class), from the original train split only.
- Test: {num_test} images ({test_per_class} per class), from the original test split only.
- Arrays (all uint8): `x_train` {sample["x_train"].shape}, `y_train` {sample["y_train"].shape},
  `x_test` {sample["x_test"].shape}, `y_test` {sample["y_test"].shape}.
- Classes: {classes}.
- Output: {npz_path.stat().st_size} bytes, sha256 `{sha256(npz_path)}`.
  The zip entries have fixed timestamps, so rerunning the script gives the same bytes.

| source file | sha256 |
| --- | --- |
{sources}
"""


def main(argv=None):
    """Parse arguments, draw the sample and write the npz and PROVENANCE.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--source-dir", type=Path, default=DEFAULT_SOURCE_DIR)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    arrays = readers.read_fashion_mnist_dir(args.source_dir)
    sample = draw_sample(arrays, train_per_class=args.train_per_class,
                         test_per_class=args.test_per_class, seed=args.seed)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    npz_path = args.output_dir / readers.EMBEDDED_FILE
    write_npz(npz_path, sample)
    text = provenance_text(source_dir=args.source_dir, sample=sample, seed=args.seed,
                           train_per_class=args.train_per_class,
                           test_per_class=args.test_per_class, npz_path=npz_path)
    (args.output_dir / "PROVENANCE.md").write_text(text)
    print(f"wrote {npz_path} ({npz_path.stat().st_size} bytes) and PROVENANCE.md")


if __name__ == "__main__":
    main()
