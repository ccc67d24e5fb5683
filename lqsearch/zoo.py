"""Published lqsearch models, as larq-zoo serves its own: `lqsearch.zoo.load(name, registry=...)`.

    import lqsearch.zoo
    model = lqsearch.zoo.load("my-bnn", registry="registry")   # a folder or an http(s) URL
    lqsearch.zoo.list_models(registry="registry")

See `lqsearch.deploy.registry` for the registry layout and `lqsearch zoo --help` for the CLI.
"""
from lqsearch.deploy.registry import (
    HashMismatchError,
    default_cache_dir,
    default_registry,
    fetch,
    get_card,
    list_models,
    load,
    publish,
)

__all__ = ["load", "list_models", "get_card", "fetch", "publish", "HashMismatchError", "default_registry",
           "default_cache_dir"]
