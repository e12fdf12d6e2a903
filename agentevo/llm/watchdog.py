"""A watchdog for a supervised backbone server: restart it when it dies or stops answering, a bounded number of
times per run, and say clearly when it gives up.

It drives any :class:`~agentevo.llm.supervised.SupervisedServer` through its public API only (``pid``,
``health``, ``owned``, ``restart``, ``stop``, ``start``, and ``kill_group``). Two signs of a fault:

* the server's leader process is gone (``kill -9``, an OOM kill, a SIGTERM from someone else): seen within one
  check interval;
* ``/health`` has failed for ``deadline`` seconds in a row (a hung or half-dead server, e.g. vLLM's API process
  alive while its engine core was killed).

On a fault it first tells its listeners (the gateway cuts off the calls in flight, which would otherwise wait
minutes for an answer that will never come), then restarts the server. After ``max_restarts`` restarts in one
run it gives up: :attr:`failure` then says why and what to do, and the gateway answers every call with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, Field

from agentevo.llm.supervised import ServerError, SupervisedServer
from agentevo.procs import group_members, kill_group
from agentevo.progress import Log, progress


class WatchdogConfig(BaseModel):
    """How closely a supervised backbone is watched, and how often it may be brought back in one run."""

    interval: float = Field(1.0, gt=0, description="Seconds between two checks.")
    deadline: float = Field(
        10.0, gt=0, description="Seconds /health may fail in a row before the server is restarted."
    )
    max_restarts: int = Field(
        3, ge=0, description="Restarts per run; one more fault after these and it gives up."
    )


class WatchState(StrEnum):
    """Where the watched backbone stands."""

    healthy = "healthy"
    restarting = "restarting"
    gave_up = "gave_up"


class BackboneWatchdog:
    """Watch ``server`` from a background thread for as long as the block (or ``start``..``stop``) runs.

    ::

        with BackboneWatchdog(server, WatchdogConfig()) as watchdog:
            watchdog.on_fault(lambda: ...)   # called from the watchdog's thread
            ...
        watchdog.restarts, watchdog.failure

    Only a server this process spawned can be restarted: one found running and reused belongs to another
    process, so a fault there ends in a give-up whose message says so. A restart is not serialised with the
    server's own adapter restarts (llama.cpp's ``load_adapter``); load adapters before a run, not while watched.
    """

    def __init__(
        self, server: SupervisedServer, config: WatchdogConfig | None = None, *, log: Log = progress
    ) -> None:
        self.server = server
        self.config = config or WatchdogConfig()
        self.log = log
        self.restarts = 0
        self.restart_seconds: list[float] = []  # how long each restart took, fault seen to healthy
        self._state = WatchState.healthy
        self._failure: str | None = None
        self._listeners: list[Callable[[], None]] = []
        self._last_healthy = time.monotonic()
        self._owned = server.owned  # a failed start forgets ownership; what counts is who spawned it first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ what the gateway reads

    @property
    def state(self) -> WatchState:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is WatchState.healthy

    @property
    def failure(self) -> str | None:
        return self._failure

    def on_fault(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def wait_ready(self, timeout: float) -> bool:
        """Block until the backbone is healthy (True), or it was given up on or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self._state is WatchState.restarting and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.ready

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._last_healthy = time.monotonic()
        self._thread = threading.Thread(
            target=self._watch, name=f"agentevo-watchdog-{self.server.slug}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the server itself is stopped, or that stop would look like a fault)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.interval + 10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ watching

    def _watch(self) -> None:
        while not self._stop.wait(self.config.interval) and self._state is not WatchState.gave_up:
            fault = self.check()
            if fault is not None and not self._stop.is_set():
                self._recover(fault)

    def check(self) -> str | None:
        """One look at the server: why it must be restarted, or None while it is fine."""
        pid = self.server.pid
        if pid is not None and pid not in group_members(pid) and self.server.pid == pid:
            # Gone, and not by the server's own restart (that forgets the old pid before ending it).
            return f"the {self.server.engine} server process (pid {pid}) is gone"
        if self.server.health():
            self._last_healthy = time.monotonic()
            return None
        silent = time.monotonic() - self._last_healthy
        if silent >= self.config.deadline:
            return f"the {self.server.engine} server has not answered /health for {silent:.0f} s"
        return None

    def _recover(self, fault: str) -> None:
        """Tell the listeners, then restart until healthy or out of restarts."""
        self._state = WatchState.restarting
        self.log(f"backbone fault: {fault}")
        for callback in list(self._listeners):  # a gateway may stop listening meanwhile
            callback()
        if not self._owned:
            self._give_up(f"{fault}, and it was started by another process, which must restart it")
            return
        began = time.monotonic()
        pid = self.server.pid
        if pid is not None:
            kill_group(pid)  # dead or hung: what is left of it gets no grace period
        while self.restarts < self.config.max_restarts and not self._stop.is_set():
            self.restarts += 1
            try:
                self._bring_back()
            except ServerError as exc:
                fault = str(exc)
                self.log(f"restart {self.restarts} of {self.config.max_restarts} failed: {fault}")
                continue
            self.restart_seconds.append(time.monotonic() - began)
            self.log(
                f"backbone back in {self.restart_seconds[-1]:.1f} s (restart {self.restarts} of {self.config.max_restarts})"
            )
            self._last_healthy = time.monotonic()
            self._state = WatchState.healthy
            return
        self._give_up(fault)

    def _bring_back(self) -> None:
        """The same server again: ``restart`` keeps its command line (llama.cpp's adapters included); after a
        failed start this process no longer owns it, so it is started afresh."""
        if self.server.owned:
            self.server.restart()
            return
        self.server.stop()
        self.server.start()

    def _give_up(self, fault: str) -> None:
        self._failure = (
            f"the {self.server.engine} backbone failed and was not brought back: {fault}. It was restarted "
            f"{self.restarts} time(s) in this run, the limit (resilience.backbone_restarts = "
            f"{self.config.max_restarts}); see its log {self.server.log_path}, then run again"
        )
        self._state = WatchState.gave_up
        self.log(self._failure)
