"""The command line's error boundary: which failures are expected, and how each is printed.

An expected failure is bad input or an unusable environment the user can fix:
it exits with code 2 and one line on stderr that names the file or key, says
what is wrong and gives the fix. These are exactly `EXPECTED_ERRORS`: any
`lqsearch.errors.LqsearchError` (usage, recipe, YAML, data, run directory,
registry) and `OSError`. A plain `ValueError` or any other exception is a bug,
which exits with code 1 and one line pointing to `--debug` (the full traceback).
"""
from __future__ import annotations

from lqsearch.errors import LqsearchError, UsageError

__all__ = ["UsageError", "EXPECTED_ERRORS", "one_line", "EXIT_USAGE", "EXIT_BUG", "EXIT_INTERRUPTED"]

EXIT_USAGE = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130


#: Refusals of input the user gave (command line, recipe, data, run directory, registry: one base class) and OS
#: errors on the paths the user gave (a full disk, a file removed meanwhile): exit code 2 and one line.
EXPECTED_ERRORS = (LqsearchError, OSError)


def one_line(error: BaseException) -> str:
    """The message of `error` as one line (an OSError names its path, what is wrong and the fix)."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename is not None else ""
        return f"{where}{error.strerror}. Fix: check that path, its permissions and the free disk space."
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
