"""The `lqsearch` command line: `profile`, `recipe list|show|run`, `zoo publish|list|show|export`."""
from lqsearch.cli.main import main

__all__ = ["main"]
