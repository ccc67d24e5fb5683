"""Progress lines of a run: one per trial, one per epoch of every final training, with ETAs."""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional, TextIO

import tensorflow as tf

__all__ = ["Progress", "EpochProgress", "clock"]


class Progress:
    """One line per trial with a generation bar, the best fitness so far, elapsed time and ETA."""

    def __init__(self, total: int, population: int, stream: TextIO = sys.stdout):
        self.total, self.population, self.stream = total, population, stream
        self.start = time.time()
        self.best: Optional[float] = None
        self.started_at = 0  # completed trials when this process started (for the ETA)

    def resume_from(self, completed: int) -> None:
        """Counts the ETA from `completed` trials finished before this process started."""
        self.started_at = completed

    def trial(self, record: Dict[str, Any], records: List[Dict[str, Any]]) -> None:
        """One line for a finished trial; generation and bar come from the oracle's lineage."""
        completed = [r for r in records if r["status"] == "COMPLETED"]
        done = len(completed)
        if record.get("fitness") is not None and record["status"] == "COMPLETED":
            self.best = record["fitness"] if self.best is None else max(self.best, record["fitness"])
        elapsed = time.time() - self.start
        fresh = max(1, done - self.started_at)
        eta = elapsed / fresh * max(0, self.total - done)
        generation = record.get("generation")
        in_generation = sum(1 for r in completed if r.get("generation") == generation)
        bar = "#" * min(10, round(10 * in_generation / self.population))
        generation = "-" if generation is None else generation
        metrics = (
            f"fitness {record['fitness']:.2f} acc {record['accuracy']:.2f}% MFLOPs {record['flops'] / 1e6:.3f}"
            if record["status"] == "COMPLETED" else f"{record['status']}: {record.get('message') or ''}"
        )
        best = "-" if self.best is None else f"{self.best:.2f}"
        print(
            f"gen {generation} [{bar:<10}] {done}/{self.total} trial {record['trial_id']} {metrics} | best {best} | "
            f"{clock(elapsed)} elapsed, ETA {clock(eta)}",
            file=self.stream, flush=True,
        )

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)


def clock(seconds: float) -> str:
    """H:MM:SS."""
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class EpochProgress(tf.keras.callbacks.Callback):
    """A Keras callback printing one line per epoch of a final training, with the whole stage's ETA.

    Arguments:
        progress: the run's `Progress` (where lines go).
        label: what trains, e.g. "study 3/12 Uniform-1x seed 2".
        remaining_epochs: epochs of the stage still to run after this training, for the ETA.
        epoch_seconds: a list shared by the stage's trainings; each epoch's duration is appended,
            and their mean times the epochs left gives the ETA.
    """

    def __init__(self, progress: Progress, label: str, remaining_epochs: int, epoch_seconds: List[float]):
        super().__init__()
        self.progress, self.label = progress, label
        self.remaining_epochs, self.epoch_seconds = remaining_epochs, epoch_seconds
        self._began = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._began)
        epochs = self.params.get("epochs", epoch + 1)
        left = self.remaining_epochs + epochs - epoch - 1
        mean = sum(self.epoch_seconds) / len(self.epoch_seconds)
        logs = logs or {}
        accuracy = f" acc {100 * logs['accuracy']:.2f}%" if "accuracy" in logs else ""
        # Keras' progress bar (verbose=1) ends its line after this callback: start a line of our own.
        line_break = "\n" if self.params.get("verbose") == 1 else ""
        self.progress.say(
            f"{line_break}{self.label}: epoch {epoch + 1}/{epochs} loss {logs.get('loss', float('nan')):.4f}{accuracy} "
            f"({self.epoch_seconds[-1]:.0f} s) | stage ETA {clock(mean * left)}"
        )
