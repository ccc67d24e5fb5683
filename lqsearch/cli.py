"""`lqsearch` command line: `profile`, `recipe ...`, `zoo ...`.

Bad input exits with code 2 and one line on stderr: what is wrong, the valid
choices, and how to fix it.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["main", "UsageError"]


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit code 2."""


def _parse_number(text: str):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"genome value {text!r} is not a number; give numbers separated by commas, e.g. 0.5,2,1,1,1,0.5") from None


def parse_genome_arg(space, text: Optional[str]):
    """Parses `--genome`: comma-separated values in paper order, or `uniform:V`. None -> uniform 1."""
    if text is None:
        return space.reference_genome()
    if text.startswith("uniform:"):
        return space.uniform(_parse_number(text.split(":", 1)[1]))
    values = [_parse_number(v) for v in text.split(",") if v.strip()]
    return space.genome(values)


def parse_options(pairs: Sequence[str]) -> dict:
    """Parses `key=value` pairs, values as YAML scalars."""
    import yaml

    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"option {pair!r} is not key=value; write e.g. --option width_multiplier=0.25")
        key, value = pair.split("=", 1)
        options[key.strip()] = yaml.safe_load(value)
    return options


def _cmd_profile(args) -> int:
    import lqsearch.spaces
    from lqsearch import cost, quantizers

    space = lqsearch.spaces.get(args.space, **parse_options(args.option))
    genome = parse_genome_arg(space, args.genome)
    quantizers.get(args.quantizer or space.default_quantizer)
    input_shape = tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape else None
    build = dict(input_shape=input_shape, num_classes=args.num_classes, quantizer=args.quantizer)
    model = space.build(genome, **build)
    reference = cost.profile(space.build(space.reference_genome(), **build))
    result = cost.profile(model)
    if args.summary:
        import larq as lq

        lq.models.summary(model)
    print(format_cost_table(space, genome, result, reference))
    return 0


def format_cost_table(space, genome, result, reference) -> str:
    """A plain-text table of one genome's cost, with FLOPs relative to the reference genome."""
    rows = [
        ("space", space.name),
        ("genome", ",".join(str(v) for v in genome.values())),
        ("binary MACs", f"{result.binary_macs:,}"),
        ("full-precision MACs", f"{result.fp_macs:,}"),
        ("FLOPs (binary/64 + fp)", f"{result.flops:,.0f}  ({result.flops / 1e6:.2f} M)"),
        ("FLOPs / reference", f"{result.flops / reference.flops:.3f}"),
        ("memory (bits)", f"{result.memory_bits:,}  ({result.memory_bits / 8 / 2**20:.2f} MiB)"),
        ("parameters", f"{result.params:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lqsearch", description="Evolutionary search for binary neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    profile = sub.add_parser("profile", help="binary-aware cost (MACs, FLOPs, memory) of a genome")
    profile.add_argument("space", help="a registered search space, e.g. vgg_small")
    profile.add_argument("--genome", help="comma-separated values in paper order, or uniform:V (default: uniform 1)")
    profile.add_argument("--quantizer", help="quantizer preset (default: the space's)")
    profile.add_argument("--input-shape", help="H,W,C (default: the space's)")
    profile.add_argument("--num-classes", type=int, help="classes (default: the space's)")
    profile.add_argument("--option", action="append", default=[], help="space option key=value (repeatable)")
    profile.add_argument("--summary", action="store_true", help="also print larq's layer summary")
    profile.set_defaults(func=_cmd_profile)

    _add_extra_commands(sub)
    return parser


def _add_extra_commands(sub) -> None:
    """Registers the `recipe` and `zoo` command groups."""
    from lqsearch import cli_recipe, cli_zoo

    cli_recipe.add_commands(sub)
    cli_zoo.add_commands(sub)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the `lqsearch` console script. Returns the exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        # key=value overrides may come after options (`run NAME --smoke a.b=1`).
        unknown = [e for e in extras if "=" not in e or e.startswith("-")]
        if unknown or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(unknown or extras)}")
        args.overrides = list(args.overrides) + extras
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"lqsearch: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
