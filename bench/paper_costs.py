"""Prints the cost of every published row (Shen et al. Tables 1-2, Phan et al. Table 1) next to ours.

Shen, Han, Xu, Wang, "Searching for Accurate Binary Neural Architectures", ICCV
Workshops 2019, arXiv:1909.07378; Phan, Liu, Huynh, Savvides, Cheng, Shen,
"Binarizing MobileNet via Evolution-based Searching", CVPR 2020, arXiv:2005.06305.

Costs are analytic (`SearchSpace.cost`, equal to `lqsearch.cost.profile` of the built
model; tests/test_cost.py checks both). A second table gives MobileNet M1 and M2 under
both readings of their full-precision 1x1 shortcut convs (`fp_shortcut_at_layer1`).

Usage: python bench/paper_costs.py [--profile]
(about 10 s, mostly importing TensorFlow; --profile also builds and profiles every model,
a few minutes on 2 busy CPU cores). The README table is its output.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lqsearch import cost  # noqa: E402
from lqsearch.testing.paper_figures import ROWS, build_row, row_cost  # noqa: E402


def _cell(ours, published):
    if published is None:
        return "-", "-", "-"
    return f"{ours / 1e6:.1f}M", f"{published / 1e6:.1f}M", f"{100 * (ours - published) / published:+.1f}%"


def paper_table(check_profile: bool) -> None:
    print("| table | model | FLOPs ours | FLOPs paper | diff | memory ours | memory paper | diff | tolerance |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        result = row_cost(row)
        if check_profile and cost.profile(build_row(row)) != result:
            raise SystemExit(f"{row.label}: the analytic cost differs from the built model's profile")
        cells = _cell(result.flops, row.flops) + _cell(result.memory_bits, row.memory_bits)
        print(f"| {row.table} | {row.label} | " + " | ".join(cells) + f" | {100 * row.tolerance:.0f}% |")


def shortcut_readings() -> None:
    print("\nMobileNet M1 / M2, FLOPs at 224x224 under both readings of the FP 1x1 shortcut convs")
    print("| model | groups | paper | five FP 1x1 (default) | diff "
          "| four FP 1x1 (fp_shortcut_at_layer1=False) | diff |")
    print("|---|---|---|---|---|---|---|")
    for row in ROWS:
        if row.space not in ("mobilenet_m1", "mobilenet_m2"):
            continue
        cells = []
        for at_layer1 in (True, False):
            flops = row_cost(row._replace(options={"fp_shortcut_at_layer1": at_layer1})).flops
            cells += [f"{flops / 1e8:.3f}e8", f"{100 * (flops - row.flops) / row.flops:+.1f}%"]
        print(f"| {row.space} | {row.genome} | {row.flops / 1e8:.2f}e8 | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true", help="also build and profile every model and check")
    args = parser.parse_args()
    paper_table(args.profile)
    shortcut_readings()


if __name__ == "__main__":
    main()
