"""One base class for bad input: every refusal is an `LqsearchError`, the CLI maps it to exit 2 and one line."""
import pytest

import lqsearch
import lqsearch.errors
from lqsearch import cli, config, training
from lqsearch.cli import errors as cli_errors
from lqsearch.data import DataError
from lqsearch.data import errors as data_errors
from lqsearch.deploy.registry_files import HashMismatchError, RegistryError
from lqsearch.errors import LqsearchError
from lqsearch.run import recipe_text, recipes, validation, yaml_text

#: Every bad-input class, as imported from the module that raises it.
BAD_INPUT = [cli_errors.UsageError, recipe_text.RecipeError, recipes.RecipeError, yaml_text.YamlError, DataError,
             data_errors.DataError, validation.RunDirError, RegistryError, HashMismatchError, config.ConfigError]


def test_the_base_class_is_exported_from_lqsearch_and_lqsearch_errors():
    assert lqsearch.LqsearchError is lqsearch.errors.LqsearchError is LqsearchError
    assert "LqsearchError" in lqsearch.__all__ and "LqsearchError" in lqsearch.errors.__all__
    assert issubclass(LqsearchError, ValueError)  # code that catches ValueError keeps working


@pytest.mark.parametrize("cls", BAD_INPUT, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_bad_input_class_is_an_lqsearch_error_defined_once(cls):
    assert issubclass(cls, LqsearchError)
    assert cls.__module__ == "lqsearch.errors" and getattr(lqsearch.errors, cls.__name__) is cls


def test_every_class_of_lqsearch_errors_is_listed_and_only_candidate_failed_is_not_bad_input():
    classes = {name: getattr(lqsearch.errors, name) for name in lqsearch.errors.__all__}
    assert set(classes) == {cls.__name__ for cls in BAD_INPUT} | {"LqsearchError", "CandidateFailed"}
    assert [name for name, cls in classes.items() if not issubclass(cls, LqsearchError)] == ["CandidateFailed"]
    # A failed training is a result the search records, not input to fix.
    assert training.CandidateFailed is lqsearch.errors.CandidateFailed
    assert issubclass(training.CandidateFailed, RuntimeError)


def _list_recipes_raises(monkeypatch, error):
    def fail():
        raise error
    monkeypatch.setattr(recipes, "list_recipes", fail)


@pytest.mark.parametrize("cls", [LqsearchError, *BAD_INPUT], ids=lambda cls: cls.__name__)
def test_the_cli_maps_any_lqsearch_error_to_exit_2_and_one_line(cls, monkeypatch, capsys):
    _list_recipes_raises(monkeypatch, cls("Bad thing 'x'; valid things are a, b.\nFix: give a.\n"))
    assert cli.main(["recipe", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "lqsearch: error: Bad thing 'x'; valid things are a, b.\n"


def test_a_failed_candidate_reaching_the_cli_is_a_bug_not_bad_input(monkeypatch, capsys):
    _list_recipes_raises(monkeypatch, training.CandidateFailed("loss became NaN"))
    assert cli.main(["recipe", "list"]) == 1
    assert "internal error: CandidateFailed: loss became NaN" in capsys.readouterr().err
