"""Why an evolutionary search stops: the messages of `EvolutionaryOracle.stop_reason`.

Pure functions of counts and settings; each message starts with
"EvolutionaryOracle: " and says what to change.
"""
__all__ = ["budget_stop_message", "exhaustion_message", "consecutive_failures_message"]


def budget_stop_message(completed, pending, failed, max_trials):
    """Returns why no new trial may start under the budget, or None if one may.

    Arguments:
        completed, pending, failed: trial counts by status.
        max_trials: the number of COMPLETED trials to reach.
    """
    budget = f"max_trials={max_trials}"
    if completed >= max_trials:
        return f"EvolutionaryOracle: done, {completed} trials completed ({budget})."
    if completed + pending >= max_trials:
        return (f"EvolutionaryOracle: {completed} trials completed and {pending} "
                f"running fill {budget}; no new trial is needed.")
    if failed >= max_trials:
        return (f"EvolutionaryOracle: {failed} trials failed, as many as {budget}; "
                "stopping. Read `trial.message` of the failed trials for the cause.")
    return None


def exhaustion_message(space_is_empty, attempts, rejected, constrained):
    """Returns why no new valid genome was found.

    Arguments:
        space_is_empty: True if the search space declares no hyperparameter.
        attempts: how many draws were made (`max_sampling_attempts`).
        rejected: {"duplicate": int, "constraint": int} rejection counts.
        constrained: True if the oracle has a constraint.
    """
    if space_is_empty:
        return ("EvolutionaryOracle: the search space is empty. Declare "
                "hyperparameters in the hypermodel or pass hyperparameters=...")
    tried = (f"after {attempts} attempts ({rejected['duplicate']} already tried, "
             f"{rejected['constraint']} broke the constraint)")
    if not constrained:
        return (f"EvolutionaryOracle: no new genome {tried}; the search space "
                "is exhausted. Enlarge the search space or lower max_trials.")
    return (f"EvolutionaryOracle: no new genome satisfying the constraint {tried};"
            " the search space is exhausted or the constraint is unsatisfiable. "
            "Relax the constraint or raise max_sampling_attempts.")


def consecutive_failures_message(streak, limit, last_message):
    """Returns the stop message after `streak` >= `limit` failed trials in a row.

    Arguments:
        streak: how many of the latest ended trials failed in a row.
        limit: `max_consecutive_failed_trials`.
        last_message: the last failed trial's message (its error), or None.
    """
    return (f"EvolutionaryOracle: {streak} consecutive trials failed "
            f"(max_consecutive_failed_trials={limit}); stopping the search. "
            "Fix the error below or raise max_consecutive_failed_trials.\n" + (last_message or ""))
