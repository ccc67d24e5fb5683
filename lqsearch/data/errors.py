"""`DataError`: bad dataset input (defined in `lqsearch.errors`; kept here for the data modules' imports)."""
from lqsearch.errors import DataError

__all__ = ["DataError"]
