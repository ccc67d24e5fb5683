"""The house stays easy to see: enforced layering, clean lint, no import cycle, small modules.

The layering contract lives in `.importlinter`; ruff's settings in `ruff.toml`.
"""
import importlib
import os
import pkgutil
import subprocess
import sys
import traceback
from pathlib import Path

import grimp
import pytest

import lqsearch

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 500
ALL_MODULES = sorted(info.name for info in pkgutil.walk_packages(lqsearch.__path__, "lqsearch."))
MODULES = [name for name in ALL_MODULES if not name.endswith(".__main__")]  # __main__ runs the CLI
SOURCES = sorted((REPO / "lqsearch").rglob("*.py"))


def _tool(name):
    return str(Path(sys.executable).parent / name)


def test_import_linter_contract_is_kept():
    result = subprocess.run([_tool("lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_ruff_is_clean():
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _strongly_connected(graph):
    """Tarjan's algorithm over the module graph; returns the components of more than one module."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.find_modules_directly_imported_by(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return components


def test_no_import_cycle_counting_imports_inside_functions():
    graph = grimp.build_graph("lqsearch")  # grimp reads every import statement, nested ones included
    assert len(graph.modules) == len(ALL_MODULES) + 1  # every module, and the package itself
    assert _strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    class TwoModules:
        modules = {"a", "b"}

        @staticmethod
        def find_modules_directly_imported_by(module):
            return {"a": {"b"}, "b": {"a"}}[module]

    assert _strongly_connected(TwoModules) == [["a", "b"]]


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_module_is_at_most_500_lines(path):
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by concept (at most {MAX_LINES})."


def test_top_level_api_is_short_and_curated():
    assert len(lqsearch.__all__) <= 12
    for name in lqsearch.__all__:
        assert getattr(lqsearch, name) is not None


def _import_alone(name):
    """Imports `name` in a forked child whose lqsearch modules are all forgotten; returns (ok, error text).

    The child keeps TensorFlow and the other third-party packages the parent has already
    imported (they cannot depend on lqsearch's import order), so each module is imported
    first, on its own, in well under a second instead of a fresh interpreter's ten.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        status = 0
        try:
            for loaded in [m for m in sys.modules if m == "lqsearch" or m.startswith("lqsearch.")]:
                del sys.modules[loaded]
            importlib.import_module(name)
        except BaseException:  # report anything, then exit without running pytest's teardown
            os.write(write, traceback.format_exc().encode()[-4000:])
            status = 1
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        error = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, error


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_on_its_own(name):
    ok, error = _import_alone(name)
    assert ok, error


def test_a_module_that_fails_to_import_is_caught():
    ok, error = _import_alone("lqsearch.no_such_module")
    assert not ok and "ModuleNotFoundError" in error
