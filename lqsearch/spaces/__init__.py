"""Registered search spaces. `get(name, **options)`, `list_spaces()`, `from_config(config)`."""
from lqsearch.spaces import mobilenet, resnet18, vgg_small  # noqa: F401  (registers the spaces)
from lqsearch.spaces.base import SearchSpace, from_config, get, list_spaces, register_space
from lqsearch.spaces.bound import BoundSpace

__all__ = ["SearchSpace", "BoundSpace", "from_config", "get", "list_spaces", "register_space"]
