"""`lqsearch zoo ...`: publish, list, show and export registry models.

    lqsearch zoo publish RUN_OR_MODEL_DIR --name N [--version V] [--registry ROOT]
    lqsearch zoo list [--registry ROOT]
    lqsearch zoo show NAME [--version V] [--registry ROOT] [--json]
    lqsearch zoo export NAME [--version V] --format tflite [--out PATH] [--registry ROOT]

ROOT defaults to `$LQSEARCH_REGISTRY` or `~/.lqsearch/registry`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from lqsearch import io
from lqsearch.cli.errors import UsageError
from lqsearch.deploy import registry

__all__ = ["add_commands"]

EXPORT_FORMATS = ("tflite",)


def add_commands(sub) -> None:
    """Registers `zoo publish|list|show|export` on the `lqsearch` subparsers."""
    parser = sub.add_parser("zoo", help="model registry: publish, list, show, export")
    commands = parser.add_subparsers(dest="zoo_command", required=True)
    registry_help = "registry folder or http(s) URL (default: $LQSEARCH_REGISTRY or ~/.lqsearch/registry)"

    publish = commands.add_parser("publish", help="publish a run's final model (or a saved model) into a registry")
    publish.add_argument("source", metavar="RUN_OR_MODEL_DIR", help="a run directory, or a saved model directory")
    publish.add_argument("--name", required=True, help="model name, e.g. vgg-small-auto")
    publish.add_argument("--version", help="version (default: next integer after the highest published)")
    publish.add_argument("--registry", help=registry_help)
    publish.add_argument("--latency-runs", type=int, default=20, help="timed LCE runs per latency (median; default 20)")
    publish.set_defaults(func=_cmd_publish)

    listing = commands.add_parser("list", help="list the published models")
    listing.add_argument("--registry", help=registry_help)
    listing.set_defaults(func=_cmd_list)

    show = commands.add_parser("show", help="show a published model's card")
    show.add_argument("name")
    show.add_argument("--version", help="version (default: the latest)")
    show.add_argument("--registry", help=registry_help)
    show.add_argument("--json", action="store_true", help="print the whole card as JSON")
    show.set_defaults(func=_cmd_show)

    export = commands.add_parser("export", help="write a published model's LCE flatbuffer")
    export.add_argument("name")
    export.add_argument("--version", help="version (default: the latest)")
    export.add_argument("--format", required=True, help=f"output format: {', '.join(EXPORT_FORMATS)}")
    export.add_argument("--out", help="output file (default: ./NAME-vVERSION.tflite)")
    export.add_argument("--registry", help=registry_help)
    export.set_defaults(func=_cmd_export)


def _cmd_publish(args) -> int:
    if args.latency_runs < 1:
        raise UsageError(f"--latency-runs must be at least 1 (timed runs per latency), got {args.latency_runs}. "
                         "Fix: e.g. --latency-runs 20.")
    entry = registry.publish(args.source, name=args.name, version=args.version, registry=args.registry,
                        latency_runs=args.latency_runs)
    card = entry["card"]
    print(f"Published {entry['name']} version {entry['version']} to {entry['registry']}")
    print(_latency_line(card))
    print(_lce_line(card))
    return 0


def _cmd_list(args) -> int:
    rows = registry.list_models(registry=args.registry)
    if not rows:
        print(f"No models published in {args.registry or registry.default_registry()} yet.")
        return 0
    header = ("name", "version", "space", "quantizer", "dataset", "top-1 %", "MFLOPs", "LCE ms", "speed-up")
    table = [header] + [(
        row["name"], row["version"], row["space"], row["quantizer"], row["dataset"] or "-",
        _number(row["top1"], ".2f"), _number(row["flops"] / 1e6, ".2f"),
        _number(row["latency_s"] * 1e3, ".2f"), _number(row["speedup"], ".2f", suffix="x"),
    ) for row in rows]
    print(_format_table(table))
    return 0


def _cmd_show(args) -> int:
    card = registry.get_card(args.name, version=args.version, registry=args.registry)
    if args.json:
        print(json.dumps(card, indent=2, sort_keys=True))
        return 0
    metrics = card["metrics"]
    rows = [
        ("name", f"{card['name']} version {card['version']}"),
        ("published", f"{card['published']} with lqsearch {card['lqsearch_version']}"),
        ("space", f"{card['space']['name']} {card['space'].get('options', {})}"),
        ("genome", ",".join(str(v) for v in card["genome"].values())),
        ("quantizer", card["quantizer"]),
        ("input shape / classes", f"{tuple(card['input_shape'])} / {card['num_classes']}"),
        ("dataset", card["dataset"] or "-"),
        ("top-1 / top-5 %", f"{_number(metrics['top1'], '.2f')} / {_number(metrics['top5'], '.2f')}"),
        ("FLOPs", f"{metrics['flops']:,.0f}"),
        ("binary MACs", f"{metrics['binary_macs']:,}"),
        ("memory (bits)", f"{metrics['memory_bits']:,}"),
        ("LCE latency", _latency_line(card)),
        ("LCE conversion", _lce_line(card)),
        ("recipe", "included (see --json)" if card.get("recipe") else "-"),
    ]
    rows += [(f"{kind} sha256", info["sha256"]) for kind, info in card["files"].items()]
    width = max(len(key) for key, _ in rows)
    print("\n".join(f"{key.ljust(width)}  {value}" for key, value in rows))
    return 0


def _cmd_export(args) -> int:
    """Checks the format, the card and the output path, fetches the verified flatbuffer, and only then writes
    it (to a temporary file renamed into place), so a failure leaves no file behind."""
    if args.format not in EXPORT_FORMATS:
        raise UsageError(f"Unknown export format {args.format!r}; valid formats are {', '.join(EXPORT_FORMATS)}. "
                         "Fix: --format tflite.")
    if args.out is not None and not args.out.strip():
        raise UsageError("--out is empty; give the output file, e.g. --out model.tflite.")
    card = registry.get_card(args.name, version=args.version, registry=args.registry)
    out = Path(args.out or f"{card['name']}-v{card['version']}.tflite")
    problem = io.file_problem(out)
    if problem:
        raise UsageError(f"--out {out} {problem}. Fix: give a file path in a folder you can write, e.g. "
                         f"--out {card['name']}-v{card['version']}.tflite.")
    report = _lce_line(card)
    source = registry.fetch(args.name, file="tflite", version=card["version"], registry=args.registry)
    try:
        io.atomic_copy(source, out)
    except OSError as error:
        raise UsageError(f"Cannot write {out}: {error.strerror or error}; nothing was written. Fix: free some "
                         "space or choose another --out.") from None
    print(f"Wrote {out} ({out.stat().st_size:,} bytes) for {card['name']} version {card['version']}")
    print(report)
    return 0


def _latency_line(card: Dict[str, Any]) -> str:
    latency = card["latency"]
    line = f"binary {latency['binary_s'] * 1e3:.2f} ms, float twin {latency['float_s'] * 1e3:.2f} ms"
    if latency["speedup"] is not None:
        return f"{line}, speed-up {latency['speedup']:.2f}x"
    return f"{line}; {latency['note']}"


def _lce_line(card: Dict[str, Any]) -> str:
    report = card["lce"]
    line = f"{report['bconv_ops']} LceBconv2d ops for {len(report['binary_layers'])} binary conv layers"
    grouped: Dict[str, List[str]] = {}
    for name, reason in report["fallbacks"].items():
        grouped.setdefault(reason, []).append(name)
    return "; ".join([line] + [f"stayed float: {', '.join(names)} ({reason})" for reason, names in grouped.items()])


def _number(value: Optional[float], spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _format_table(rows: List[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
