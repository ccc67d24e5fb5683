"""lqsearch: evolutionary search for accurate, cheap binary neural networks."""
from lqsearch._version import __version__

__all__ = ["__version__"]
