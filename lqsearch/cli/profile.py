"""`lqsearch profile SPACE [--genome ...]`: the binary-aware cost of one genome, as a table."""
from __future__ import annotations

from typing import Optional, Sequence

import larq as lq
import yaml

from lqsearch import cost, quantizers, spaces
from lqsearch.cli.errors import UsageError

__all__ = ["add_commands", "parse_genome_arg", "parse_options", "format_cost_table"]


def add_commands(sub) -> None:
    """Registers `lqsearch profile` on the main parser's subparsers."""
    profile = sub.add_parser("profile", help="binary-aware cost (MACs, FLOPs, memory) of a genome")
    profile.add_argument("space", help="a registered search space, e.g. vgg_small")
    profile.add_argument("--genome", help="comma-separated values in paper order, or uniform:V (default: uniform 1)")
    profile.add_argument("--quantizer", help="quantizer preset (default: the space's)")
    profile.add_argument("--input-shape", help="H,W,C (default: the space's)")
    profile.add_argument("--num-classes", type=int, help="classes (default: the space's)")
    profile.add_argument("--option", action="append", default=[], help="space option key=value (repeatable)")
    profile.add_argument("--summary", action="store_true", help="also print larq's layer summary")
    profile.set_defaults(func=_cmd_profile)


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
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"option {pair!r} is not key=value; write e.g. --option width_multiplier=0.25")
        key, value = pair.split("=", 1)
        options[key.strip()] = yaml.safe_load(value)
    return options


def _cmd_profile(args) -> int:
    space = spaces.get(args.space, **parse_options(args.option))
    genome = parse_genome_arg(space, args.genome)
    quantizers.get(args.quantizer or space.default_quantizer)
    input_shape = tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape else None
    build = dict(input_shape=input_shape, num_classes=args.num_classes, quantizer=args.quantizer)
    model = space.build(genome, **build)
    reference = cost.profile(space.build(space.reference_genome(), **build))
    result = cost.profile(model)
    if args.summary:
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
