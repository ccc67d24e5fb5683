"""Prints the cost of every published row (seed 1 Tables 1-2, seed 2 Table 1) next to ours.

Usage: python bench/paper_costs.py   (about 30 s on 2 CPU cores; the README table is its output)
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from lqsearch import cost  # noqa: E402
from paper_figures import ROWS, build_row  # noqa: E402


def _cell(ours, published):
    if published is None:
        return "-", "-", "-"
    return f"{ours / 1e6:.1f}M", f"{published / 1e6:.1f}M", f"{100 * (ours - published) / published:+.1f}%"


def main():
    print("| table | model | FLOPs ours | FLOPs paper | diff | memory ours | memory paper | diff |")
    print("|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        table, label, *_, flops, memory_bits, _ = row
        result = cost.profile(build_row(row))
        cells = _cell(result.flops, flops) + _cell(result.memory_bits, memory_bits)
        print(f"| {table} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
