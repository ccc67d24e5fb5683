"""lqsearch's exceptions: `LqsearchError` (input the library cannot use) and its kinds, and `CandidateFailed`.

Every refusal of input (a recipe, a command line, a dataset, a run directory, a
registry) is an `LqsearchError`, so a caller catches one class; the command line
prints it as one line and exits with code 2. It is a `ValueError`, so code that
catches `ValueError` keeps working. `CandidateFailed` is not bad input: a
candidate that could not be trained is a result the search records as a failed
trial. This module imports nothing (the bottom layer of `.importlinter`); each
class is also importable from the module that raises it.
"""

__all__ = [
    "LqsearchError",
    "UsageError",
    "RecipeError",
    "ConfigError",
    "YamlError",
    "DataError",
    "RunDirError",
    "RegistryError",
    "HashMismatchError",
    "CandidateFailed",
]


class LqsearchError(ValueError):
    """Input the library cannot use; the message says what is wrong, what is allowed and how to fix it."""


class UsageError(LqsearchError):
    """Bad command-line input (an option, an argument); printed as one line, exit code 2."""


class RecipeError(LqsearchError):
    """An invalid recipe, key or value; the message says what to change."""


class ConfigError(LqsearchError):
    """A settings value that is refused (`lqsearch.config`); the message names the key, what is allowed and a fix."""


class YamlError(LqsearchError):
    """Text that is not valid YAML for a recipe; the message names the source, the line and the column."""


class DataError(LqsearchError):
    """Bad dataset name, file, array or option: the message says what and how to fix it."""


class RunDirError(LqsearchError):
    """The output directory cannot be used for this recipe; the message says why."""


class RegistryError(LqsearchError):
    """A registry that cannot be read or written, a malformed registry file, or an unknown name or version."""


class HashMismatchError(RegistryError):
    """A registry file's sha256 differs from the one its card (or index) records."""


class CandidateFailed(RuntimeError):
    """A candidate could not be trained (e.g. its loss became NaN); the message says why.

    Not an `LqsearchError`: the input was valid, the training failed, and the search
    records the trial as failed with this reason and goes on.
    """
