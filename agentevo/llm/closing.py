"""The generations of an in-process model in flight, and how its owner ends them before the process exits.

Python ends the daemon threads still running when the interpreter finalizes by unwinding them from the inside;
one that is inside torch's C++ code at that moment aborts the whole process ("terminate called without an active
exception", SIGABRT, exit 134) after the command has printed its results. The gateway runs each call of the
in-process model in a daemon thread it never joins (a call cut off by a closing gateway finishes by itself), so
the model's owner closes it instead: new calls are refused, running generations stop at their next token (their
stopping criterion reads ``closed``), waits for the model's lock end, and ``close`` returns once none is left.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

POLL_S = 0.1  # how often a call waiting for the model's lock looks whether the model was closed


class ModelClosed(RuntimeError):
    """The model was closed (its owner is stopping): the call was refused or cut short, and has no answer."""


class Generations:
    """Counts one model's calls in flight; ``close`` refuses new ones, stops the running ones and waits for them."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self._changed = threading.Condition()
        self._running = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Count a call for as long as the block runs; refused once the model is closed."""
        with self._changed:
            self.refuse_if_closed()
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def holding(self, lock: threading.Lock) -> Iterator[None]:
        """Hold ``lock`` (shared by every instance of the model) for the block; a wait for it ends when closed."""
        while not lock.acquire(timeout=POLL_S):
            self.refuse_if_closed()
        try:
            yield
        finally:
            lock.release()

    def refuse_if_closed(self) -> None:
        if self.closed.is_set():
            raise ModelClosed("the in-process model was closed: the process is stopping")

    def close(self, timeout: float) -> bool:
        """Refuse new calls, stop the running ones, and wait (at most ``timeout`` s) for them to end: whether
        none is left."""
        self.closed.set()
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout)
