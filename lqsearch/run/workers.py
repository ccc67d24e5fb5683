"""One recipe across processes: Keras Tuner's chief (this process) and local workers that only run trials.

Keras Tuner's distributed mode is the engine: a process whose `KERASTUNER_TUNER_ID`
is `chief` serves the oracle over gRPC at `KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`,
and every other process (a worker) asks it for trials. `lqsearch recipe run NAME
--workers N` starts N local workers on 127.0.0.1 (`WorkerPool`) once the chief has
prepared the run directory and the evaluator's one-off work (widest network or
supernet), and restarts a worker that dies from a signal (kill -9) under the same
id: Keras Tuner then hands it its unfinished trial again, so no trial is lost.

On other machines, start the same command with a shared `--out` directory and the
three variables set (`KERASTUNER_TUNER_ID=worker1`, the chief's address and port);
`is_worker()` makes the runner run trials only there.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, Iterator, List, Optional, Sequence

__all__ = ["WorkerPool", "is_worker", "is_chief", "chief_environment", "single_process", "ROLE_VARIABLES"]

ROLE_VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
#: Restarts allowed per worker (a worker that keeps dying is a bug to see, not to hide).
MAX_RESTARTS = 3


def is_chief() -> bool:
    """True in the chief process of Keras Tuner's distributed mode."""
    return os.environ.get("KERASTUNER_TUNER_ID") == "chief" and "KERASTUNER_ORACLE_PORT" in os.environ


def is_worker() -> bool:
    """True in a worker process of Keras Tuner's distributed mode (it only runs trials)."""
    return "KERASTUNER_TUNER_ID" in os.environ and "KERASTUNER_ORACLE_PORT" in os.environ and not is_chief()


def _set_environment(values: Dict[str, Optional[str]]) -> None:
    """Sets each variable of `values`, or removes it where the value is None."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def _environment(values: Dict[str, Optional[str]]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def chief_environment(port: int) -> contextlib.AbstractContextManager:
    """This process as the chief on 127.0.0.1:`port` (the variables are restored afterwards)."""
    return _environment({"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                         "KERASTUNER_ORACLE_PORT": str(port)})


def single_process() -> contextlib.AbstractContextManager:
    """No distributed role (for the chief's stages after the search: random search, study, publish)."""
    return _environment({name: None for name in ROLE_VARIABLES})


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerPool:
    """N local worker processes running `argv` (the same `lqsearch recipe run ...` without `--workers`).

    Arguments:
        argv: the worker's command line after the Python executable, e.g.
            `["-m", "lqsearch.cli", "recipe", "run", "quickstart", "--out", "runs/q"]`.
        workers: how many workers.
        port: the chief's port on 127.0.0.1.
    """

    def __init__(self, argv: Sequence[str], workers: int, port: int):
        self.argv = list(argv)
        self.workers = workers
        self.port = port
        self.processes: Dict[str, subprocess.Popen] = {}
        self.restarts: Dict[str, int] = {}
        self._stop = threading.Event()
        self._watcher: Optional[threading.Thread] = None

    def _spawn(self, tuner_id: str) -> None:
        env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(self.port)}
        self.processes[tuner_id] = subprocess.Popen([sys.executable, *self.argv], env=env)

    def start(self) -> None:
        """Starts the workers and a thread that restarts any killed by a signal (same id)."""
        for index in range(self.workers):
            self._spawn(f"worker{index}")
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for tuner_id, process in list(self.processes.items()):
                code = process.poll()
                if code is not None and code < 0 and self.restarts.get(tuner_id, 0) < MAX_RESTARTS:
                    self.restarts[tuner_id] = self.restarts.get(tuner_id, 0) + 1
                    print(f"lqsearch: worker {tuner_id} was stopped by signal {-code}; restarting it "
                          f"({self.restarts[tuner_id]}/{MAX_RESTARTS}), it resumes its trial", flush=True)
                    self._spawn(tuner_id)

    def wait(self, timeout: float = 600.0) -> List[int]:
        """Waits for every worker to exit (they do once the chief has no trial left); their exit codes."""
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in self.processes.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.stop()

    def stop(self) -> List[int]:
        """Stops the watcher and ends any worker still running; their exit codes."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        return [process.returncode for process in self.processes.values()]
