"""Command-line helpers shared by the bench/ scripts: the `--only` list of parts, checked once."""
from __future__ import annotations

import argparse
from typing import List, Sequence


def selected_parts(parser: argparse.ArgumentParser, text: str, parts: Sequence[str]) -> List[str]:
    """The parts named in `--only` (comma-separated); an unknown one exits through `parser.error` with the list."""
    chosen = text.split(",")
    unknown = sorted(set(chosen) - set(parts))
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(unknown)}; the parts are {', '.join(parts)}")
    return chosen
