"""Prints the cost of every published row (Shen et al. Tables 1-2, Phan et al. Table 1) next to ours.

Usage: python bench/paper_costs.py   (about 30 s on 2 CPU cores; the README table is its output)
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lqsearch import cost  # noqa: E402
from lqsearch.testing.paper_figures import ROWS, build_row  # noqa: E402


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
