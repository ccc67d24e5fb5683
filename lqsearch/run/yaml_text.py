"""Reading recipe YAML: numbers as YAML 1.2 reads them, duplicate keys refused, errors with a line and column.

PyYAML implements YAML 1.1, where `2e6` and `1e-3` are strings (a float needs a
dot and a signed exponent: `2.0e+6`). Recipes are read here with PyYAML's safe
loader plus the YAML 1.2 float forms, so `search.max_flops=2e6` is the number
2000000.0. A key given twice in one mapping (PyYAML silently keeps the last) is
refused. Both the recipe files and the `key=value` overrides of the command line
go through `load` and `load_scalar`.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from lqsearch.errors import YamlError

__all__ = ["YamlError", "load", "load_scalar"]

#: Floats YAML 1.2 reads but YAML 1.1 does not: an exponent without a dot or without a sign (`2e6`, `1.5e6`, `1E-3`).
_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats and duplicate keys refused."""

    def construct_mapping(self, node, deep=False):
        """Refuses a key given twice in one mapping (merge keys `<<` excepted), then builds it as usual.

        Raises:
            yaml.constructor.ConstructorError: on a duplicate key, marked at its second occurrence.
        """
        if isinstance(node, yaml.MappingNode):
            first_seen = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in first_seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"the key {key!r} is given twice (first on line {first_seen[key].line + 1}); keep one",
                        key_node.start_mark)
                first_seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_RecipeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))


def _describe(error: yaml.YAMLError, source: str) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return (f"{source} is not valid YAML{where}: {problem}. Fix: correct that line; recipe YAML is `key: value`, "
            "nested settings indented under their group, e.g. `search: {population_size: 8}`.")


def load(text: str, *, source: str) -> Any:
    """Parses YAML text (one document).

    Arguments:
        text: the YAML text.
        source: what the text is, for messages (e.g. "Recipe file 'my.yaml'").

    Returns:
        The parsed data (None for an empty document).

    Raises:
        YamlError: on a syntax error or a duplicate key, with the line and column.
    """
    try:
        return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise YamlError(_describe(error, source)) from None


def load_scalar(raw: str, *, source: str) -> Any:
    """Parses the value of a `key=value` override as a YAML scalar.

    A flow list or mapping must be written in brackets (`[1, 2]`, `{a: 1}`): text
    that only looks like a block mapping or list (`npz:`, `- x`) or a comment
    (`#1`) is kept as a string, so `dataset=npz:` reaches the dataset check
    instead of becoming a mapping. Empty text is None (null).

    Arguments:
        raw: the text after the first `=`.
        source: the override, for messages.

    Returns:
        The parsed value.

    Raises:
        YamlError: on text that is not valid YAML.
    """
    text = raw.strip()
    if not text:
        return None
    if text.startswith("#"):
        return text
    value = load(text, source=source)
    if isinstance(value, (dict, list)) and not text.startswith(("{", "[")):
        return text
    return value
