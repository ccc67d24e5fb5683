"""Keras Tuner project files after a kill: what can be repaired so a search resumes."""
import json
import logging
import os

from lqsearch import io

__all__ = ["repair_tuner_state_files"]

logger = logging.getLogger("lqsearch.search.oracle")


def repair_tuner_state_files(project_dir):
    """Resets unreadable `<tuner_id>.json` files of a local project to `{}`.

    Keras Tuner writes them non-atomically after every trial, so a kill can
    leave an empty file that makes every restart fail; `{}` is the state of
    every Keras Tuner `Tuner`. Remote (`scheme://`) projects are left alone.

    Arguments:
        project_dir: the Keras Tuner project directory.
    """
    if "://" in project_dir:
        return
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name)
        if not name.endswith(".json") or name.startswith(".") or name == "oracle.json":
            continue
        try:
            with open(path) as state_file:
                json.load(state_file)
        except ValueError:
            logger.warning(
                "EvolutionaryOracle: %s was cut short by an interrupted write; "
                "resetting it to {} so the search can resume.", path,
            )
            io.write_json(path, {})
