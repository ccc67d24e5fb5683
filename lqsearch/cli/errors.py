"""`UsageError`: bad command-line input, printed as one line with exit code 2."""

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit code 2."""
