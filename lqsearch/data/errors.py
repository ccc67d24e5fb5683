"""`DataError`: bad dataset input. This module imports nothing else of lqsearch."""

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad dataset name, file, array or option: the message says what and how to fix it."""
