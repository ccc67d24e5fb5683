"""`lqsearch` command line: `profile`, `recipe ...`, `zoo ...`, `--version`.

Bad input (any `lqsearch.errors.LqsearchError`, or an OSError on a path the
user gave) exits with code 2 and one line on stderr: what is wrong, the valid
choices, and how to fix it (see `lqsearch.cli.errors`). Anything unexpected
exits with code 1 and one line; `--debug`, anywhere on the command line, shows
the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import List, NoReturn, Optional

# TensorFlow 2.15 logs three cuDNN/cuFFT/cuBLAS "already registered" errors at import on a
# machine without CUDA; level 3 keeps the command line to its own one-line messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lqsearch._version import __version__  # noqa: E402
from lqsearch.cli import profile, recipe, zoo  # noqa: E402  (after quieting TensorFlow's C++ logs)
from lqsearch.cli.errors import (  # noqa: E402
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXPECTED_ERRORS,
    UsageError,
    one_line,
)

__all__ = ["main", "build_parser"]

DEBUG_FLAG = "--debug"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line `UsageError`s instead of usage text and an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}. Fix: see `{self.prog} --help`.")


def build_parser() -> argparse.ArgumentParser:
    """The `lqsearch` argument parser with every command registered."""
    parser = _Parser(prog="lqsearch", description="Evolutionary search for binary neural networks.")
    parser.add_argument(DEBUG_FLAG, action="store_true", help="show the traceback of an unexpected error")
    parser.add_argument("--version", action="version", version=f"lqsearch {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    profile.add_commands(sub)
    recipe.add_commands(sub)
    zoo.add_commands(sub)
    return parser


def _run(argv: List[str]) -> int:
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as done:  # --help or --version printed and argparse stopped (its errors are UsageErrors)
        return int(done.code or 0)
    if extras:
        # key=value overrides may come after options (`run NAME --smoke a.b=1`).
        unknown = [e for e in extras if "=" not in e or e.startswith("-")]
        if unknown or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(unknown or extras)}")
        args.overrides = list(args.overrides) + extras
    return int(args.func(args) or 0)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the `lqsearch` console script.

    Arguments:
        argv: the arguments (default `sys.argv[1:]`); `--debug` may appear anywhere.

    Returns:
        The exit code: 0, 2 for bad input (one line on stderr), 1 for a bug, 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        return _run(argv)
    except EXPECTED_ERRORS as error:  # LqsearchError (bad input) and OSError
        if debug:
            traceback.print_exc()
        print(f"lqsearch: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lqsearch: interrupted; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the boundary: anything else is a bug, reported in one line
        if debug:
            traceback.print_exc()
        print(f"lqsearch: internal error: {type(error).__name__}: {one_line(error)} (this is a bug; rerun with "
              f"{DEBUG_FLAG} to see the traceback, and report it)", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
