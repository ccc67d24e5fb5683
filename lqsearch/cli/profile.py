"""`lqsearch profile SPACE [--genome ...]`: the binary-aware cost of one genome, as a table."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import larq as lq

from lqsearch import cost, quantizers, spaces
from lqsearch.checks import check_finite, check_int
from lqsearch.cli.errors import UsageError
from lqsearch.run import yaml_text
from lqsearch.run.validation import minimum_image_size

__all__ = ["add_commands", "parse_genome_arg", "parse_options", "parse_input_shape", "format_cost_table"]

GENOME_EXAMPLE = "e.g. --genome 0.5,2,1,1,1,0.5 or --genome uniform:2"


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
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--genome value {text!r} is not a number; {GENOME_EXAMPLE}.") from None
    if not math.isfinite(value):
        raise UsageError(f"--genome value {text!r} is not a finite number; NaN and infinity are refused. "
                         f"Fix: {GENOME_EXAMPLE}.")
    return value


def parse_genome_arg(space, text: Optional[str]):
    """Parses `--genome`: comma-separated values in paper order, or `uniform:V`. None -> uniform 1.

    Raises:
        UsageError: on a value that is not a finite number, an empty item, a uniform value <= 0,
            or a genome the space refuses (wrong length, value not allowed).
    """
    if text is None:
        return space.reference_genome()
    if text.startswith("uniform:"):
        value = _parse_number(text.split(":", 1)[1])
        if value <= 0:
            raise UsageError(f"--genome {text!r}: a uniform value must be > 0 (it is the expansion ratio or group "
                             f"count of every gene). Fix: {GENOME_EXAMPLE}.")
        return space.uniform(value)
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise UsageError(f"--genome {text!r} has an empty value; give one number per gene, separated by commas, "
                         f"{GENOME_EXAMPLE}.")
    values = [_parse_number(item) for item in items]  # its UsageError is not the space's ValueError below
    try:
        return space.genome(values)
    except ValueError as error:
        raise UsageError(f"--genome {text!r}: {error}") from None


def parse_options(pairs: Sequence[str]) -> dict:
    """Parses `--option key=value` pairs, values as YAML scalars (YAML 1.2 numbers).

    Raises:
        UsageError: on a pair that is not key=value, a key given twice, or NaN or infinity.
    """
    options = {}
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UsageError(f"--option {pair!r} is not key=value; write e.g. --option width_multiplier=0.25")
        if key in options:
            raise UsageError(f"--option {key} is given twice; keep one of them.")
        try:
            options[key] = check_finite(f"--option {key}", yaml_text.load_scalar(raw, source=f"--option {pair!r}"))
        except ValueError as error:
            raise UsageError(str(error)) from None
    return options


def parse_input_shape(text: Optional[str]) -> Optional[Tuple[int, int, int]]:
    """Parses `--input-shape H,W,C` into three positive integers (None when not given).

    Raises:
        UsageError: on anything else.
    """
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"--input-shape {text!r} is not three positive integers H,W,C; "
                         "write e.g. --input-shape 32,32,3.")
    return shape


def _cmd_profile(args) -> int:
    options = parse_options(args.option)
    try:
        space = spaces.get(args.space, **options)
        quantizer = quantizers.get(args.quantizer or space.default_quantizer).name
        num_classes = None if args.num_classes is None else check_int("--num-classes", args.num_classes, minimum=2)
    except ValueError as error:  # the space, its options, the preset and the classes all come from the user
        raise UsageError(str(error)) from None
    genome = parse_genome_arg(space, args.genome)
    input_shape = parse_input_shape(args.input_shape)
    build = dict(input_shape=input_shape, num_classes=num_classes, quantizer=quantizer)
    try:
        model = space.build(genome, **build)
    except ValueError:
        shape = input_shape or space.default_input_shape
        minimum = minimum_image_size(space, channels=shape[-1], quantizer=quantizer)
        if min(shape[:2]) >= minimum:
            raise
        raise UsageError(f"--input-shape {','.join(map(str, shape))} is too small for search space {space.name!r}: "
                         f"its pooling needs at least {minimum}x{minimum}. Fix: e.g. --input-shape "
                         f"{minimum},{minimum},{shape[-1]}.") from None
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
