"""Local networking helpers for tests that start Keras Tuner chief/worker processes."""
from lqsearch.run.workers import free_port  # the one implementation: `--workers` picks the chief's port with it

__all__ = ["free_port"]
