"""`WorkerBarrier`: workers waiting for a generation to end back off instead of busy-polling.

Keras Tuner's `BaseTuner.search` asks the oracle for a trial again at once
when it gets an IDLE answer. `EvolutionaryOracle.create_trial` decides under
the oracle lock, then, for an IDLE answer, calls `back_off` OUTSIDE that
lock: the worker sleeps 0.05 s, then twice as long at each IDLE answer in a
row, up to 1 s, and wakes early when any trial ends (`trial_ended`), so other
workers can end their trials meanwhile and a freed slot is taken at once.

In distributed mode the chief serves every worker from one gRPC thread, so a
waiting worker's back-off also delays the other requests by at most the cap.
"""
import logging
import threading

__all__ = ["WorkerBarrier", "BACKOFF_FIRST", "BACKOFF_CAP"]

logger = logging.getLogger("lqsearch.search.oracle")

# The first wait and the cap of the doubling waits, in seconds.
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 1.0


class WorkerBarrier:
    """Who waits, why, and for how long; thread-safe (its own lock, never the oracle's)."""

    def __init__(self):
        self._condition = threading.Condition()
        self._waiting = {}  # tuner id -> (reason, ended count when told to wait)
        self._delays = {}  # tuner id -> next back-off in seconds
        self._ended = 0

    def answered(self, tuner_id, waits, reason=None):
        """Records the answer given to `tuner_id`: a trial (`waits` False) or IDLE with `reason`.

        The reason is logged once per wait, when the worker starts waiting.
        """
        with self._condition:
            if not waits:
                self._waiting.pop(tuner_id, None)
                self._delays.pop(tuner_id, None)
                return
            if tuner_id not in self._waiting:
                logger.info("EvolutionaryOracle: %s is %s.", tuner_id, reason)
            self._waiting[tuner_id] = (reason, self._ended)

    def trial_ended(self):
        """Wakes the waiting workers: a trial ended, so a slot or a new generation may be open."""
        with self._condition:
            self._ended += 1
            self._condition.notify_all()

    def back_off(self, tuner_id):
        """Sleeps for the worker's next back-off delay, or until a trial ends after its IDLE answer.

        Returns:
            The delay allowed for this wait, in seconds.
        """
        with self._condition:
            _, seen = self._waiting.get(tuner_id, (None, self._ended))
            delay = self._delays.get(tuner_id, BACKOFF_FIRST)
            self._delays[tuner_id] = min(2.0 * delay, BACKOFF_CAP)
            self._condition.wait_for(lambda: self._ended != seen, timeout=delay)
        return delay

    def reason(self, tuner_id=None):
        """Why `tuner_id` (None: any worker) waits, or None."""
        with self._condition:
            if tuner_id is None:
                return next(iter(self._waiting.values()))[0] if self._waiting else None
            return self._waiting[tuner_id][0] if tuner_id in self._waiting else None
