"""Recipe text: finding and reading recipe files, and parsing and applying `key=value` overrides.

Everything here works on plain text and mappings; `lqsearch.run.recipes`
validates the result into a `Recipe`. Files are read as UTF-8 (a file that is
not, or cannot be read, is a `RecipeError` naming it); YAML goes through
`lqsearch.run.yaml_text` (YAML 1.2 numbers, duplicate keys refused, errors with
a line and a column).
"""
from __future__ import annotations

import copy
import difflib
import importlib.resources
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from lqsearch.errors import RecipeError
from lqsearch.run import yaml_text

__all__ = ["RecipeError", "list_recipes", "read_recipe_text", "parse_override", "parse_overrides", "apply_overrides"]

_REPO_RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _recipe_files() -> Dict[str, Any]:
    if _REPO_RECIPES.is_dir():
        return {p.stem: p for p in sorted(_REPO_RECIPES.glob("*.yaml"))}
    try:
        root = importlib.resources.files("lqsearch._recipes")
    except ModuleNotFoundError:
        return {}
    return {Path(str(p.name)).stem: p for p in sorted(root.iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml")}


def list_recipes() -> List[str]:
    """Names of the shipped recipes."""
    return sorted(_recipe_files())


def _read_text(path, shown: str) -> str:
    """The UTF-8 text of a recipe file; RecipeError naming the file when it cannot be read or decoded."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RecipeError(f"Recipe file {shown!r} cannot be read ({error.strerror or error}). Fix: check that it is a "
                          "file you may read (e.g. chmod a+r), or give another path.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise RecipeError(f"Recipe file {shown!r} is not UTF-8 text: byte 0x{raw[error.start]:02x} on line {line} "
                          "cannot be decoded. Fix: save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).") from None


def read_recipe_text(name_or_path: str) -> Tuple[str, str]:
    """Returns (name, YAML text) of a shipped recipe name or a path to a YAML file.

    Raises:
        RecipeError: if it is neither (listing the shipped recipes), or the file cannot be read as UTF-8 text.
    """
    files = _recipe_files()
    if name_or_path in files:
        return name_or_path, _read_text(files[name_or_path], name_or_path)
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if path.is_file():
            return path.stem, _read_text(path, name_or_path)
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise RecipeError(f"Recipe file {name_or_path!r} {problem}. Fix: give the path of a .yaml recipe file, or "
                          f"a shipped recipe name ({', '.join(sorted(files))}).")
    close = difflib.get_close_matches(name_or_path, list(files), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise RecipeError(
        f"Unknown recipe {name_or_path!r}.{hint} Available recipes: {', '.join(sorted(files))}; "
        "or give a path to a .yaml file."
    )


def parse_override(text: str) -> Tuple[str, Any]:
    """`a.b=value` -> ("a.b", YAML-parsed value; YAML 1.2 numbers, see `yaml_text.load_scalar`).

    Raises:
        RecipeError: if `text` is not `key=value` or the value is not valid YAML.
    """
    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"Override {text!r} is not key=value with a dotted key; write e.g. search.population_size=8.")
    try:
        value = yaml_text.load_scalar(raw, source=f"The value of override {text!r}")
    except yaml_text.YamlError as error:
        raise RecipeError(str(error)) from None
    return key, value


def parse_overrides(texts: Sequence[str]) -> Dict[str, Any]:
    """Parses `key=value` overrides into {dotted key: value}.

    Raises:
        RecipeError: on a malformed override, or a key given twice.
    """
    overrides: Dict[str, Any] = {}
    given: Dict[str, str] = {}
    for text in texts:
        key, value = parse_override(text)
        if key in given:
            raise RecipeError(f"Override {key!r} is given twice ({given[key]!r} and {text!r}); the last one "
                              "would silently win. Fix: keep one of them.")
        given[key] = text
        overrides[key] = value
    return overrides


def apply_overrides(data: Dict[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of `data` with dotted-key overrides applied (unknown keys are caught by validation)."""
    result = copy.deepcopy(dict(data))
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"Override {dotted!r}: {part!r} is not a group of settings. Fix: give "
                                  f"{'.'.join(parts[:depth + 1])}=VALUE, or a key inside a group.")
            node = child
        node[parts[-1]] = value
    return result
