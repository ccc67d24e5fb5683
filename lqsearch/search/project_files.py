"""Keras Tuner project files after a kill: what can be repaired so a search resumes."""
import json
import logging
import os

from lqsearch import io

__all__ = ["repair_tuner_state_files", "requeued_orders"]

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


def requeued_orders(trials, retry_queue, start_order, end_order, index_of, pending_statuses):
    """Makes the trial files, not `oracle.json`, decide what is finished.

    A finished trial still listed as running leaves the retry queue (no
    second evaluation); an unfinished trial missing from the queue (killed
    between writing it and `oracle.json`) joins it (not lost).

    Arguments:
        trials: trial id -> `Trial`, as loaded from the trial files.
        retry_queue, start_order, end_order: the lists read from `oracle.json`.
        index_of: trial id -> sortable creation index.
        pending_statuses: the statuses of unfinished trials.

    Returns:
        New `(retry_queue, start_order, end_order)` lists.
    """
    ordered = sorted(trials, key=index_of)
    queue = []
    for trial_id in list(retry_queue) + ordered[::-1]:
        trial = trials.get(trial_id)
        if trial is not None and trial_id not in queue and trial.status in pending_statuses:
            queue.append(trial_id)
    start_order, end_order = list(start_order), list(end_order)
    for trial_id in ordered:
        if trial_id not in start_order:
            start_order.append(trial_id)
        if trials[trial_id].status not in pending_statuses and trial_id not in end_order:
            end_order.append(trial_id)
    return queue, start_order, end_order
