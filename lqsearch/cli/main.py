"""`lqsearch` command line: `profile`, `recipe ...`, `zoo ...`.

Bad input exits with code 2 and one line on stderr: what is wrong, the valid
choices, and how to fix it.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

# TensorFlow 2.15 logs three cuDNN/cuFFT/cuBLAS "already registered" errors at import on a
# machine without CUDA; level 3 keeps the command line to its own one-line messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lqsearch.cli import profile, recipe, zoo  # noqa: E402  (after quieting TensorFlow's C++ logs)
from lqsearch.cli.errors import UsageError  # noqa: E402

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lqsearch", description="Evolutionary search for binary neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    profile.add_commands(sub)
    recipe.add_commands(sub)
    zoo.add_commands(sub)
    return parser


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
