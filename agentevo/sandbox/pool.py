"""A warm pool: sandboxes started ahead of time so a task never waits for container start-up.

A sandbox leaves the pool for good: once used it is closed, never handed out again, so one task's
files or processes can never reach the next.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

from agentevo.runs import new_run_id
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.errors import SandboxError
from agentevo.sandbox.provider import RunningSandbox
from agentevo.sandbox.providers import provider_for
from agentevo.sandbox.sandbox import AsyncSandbox, Sandbox

# A pooled sandbox this close to its TTL is replaced rather than handed out.
MIN_LIFETIME_LEFT = 0.5
START_JOIN_SECONDS = 70.0


class SandboxPool:
    """Keeps ``config.pool_size`` started sandboxes (of the provider ``config`` names) ready; ``acquire()`` hands
    one out at once.

    ::

        with SandboxPool(config) as pool:
            with pool.acquire() as sb:
                sb.exec("pytest -q")
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        size: int | None = None,
        run_id: str | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.size = self.config.pool_size if size is None else size
        self.run_id = run_id or new_run_id()
        self._provider = provider_for(self.config)
        self._ready: queue.Queue[RunningSandbox] = queue.Queue()
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self.last_error: BaseException | None = None
        self._provider.reap()
        self._filler = threading.Thread(target=self._fill, name="sandbox-pool", daemon=True)
        self._wanted.set()
        self._filler.start()

    def acquire(self, timeout: float | None = None) -> RunningSandbox:
        """A ready sandbox: from the pool when one is warm, else started now."""
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            try:
                sandbox = self._ready.get_nowait()
            except queue.Empty:
                break
            self._wanted.set()
            if sandbox.alive and self._fresh(sandbox):
                return sandbox
            sandbox.close()
        self._wanted.set()
        if deadline is not None:
            # Wait for the filler up to the deadline rather than racing it for the engine.
            try:
                return self._ready.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pass
        return self._provider.start(self.config, run_id=self.run_id)

    async def acquire_async(self) -> AsyncSandbox:
        """``acquire`` for asyncio code: Docker sandboxes, whose supervisor channel ``AsyncSandbox`` awaits."""
        sandbox = await asyncio.to_thread(self.acquire)
        if not isinstance(sandbox, Sandbox):
            sandbox.close()
            raise SandboxError(f"{type(sandbox).__name__} has no asyncio face: call acquire() in a thread")
        return AsyncSandbox(sandbox)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Block until the pool is full (or ``timeout``); True when it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.qsize() >= self.size:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop refilling and remove every idle sandbox."""
        self._stopping.set()
        self._wanted.set()
        self._filler.join(timeout=START_JOIN_SECONDS)
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fresh(self, sandbox: RunningSandbox) -> bool:
        age = time.time() - sandbox.started_at
        return age < self.config.ttl_seconds * (1 - MIN_LIFETIME_LEFT)

    def _fill(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait()
            self._wanted.clear()
            while not self._stopping.is_set() and self._ready.qsize() < self.size:
                try:
                    sandbox = self._provider.start(self.config, run_id=self.run_id)
                except Exception as exc:  # noqa: BLE001 - surfaced through last_error and acquire()
                    self.last_error = exc
                    self._stopping.wait(1.0)
                    break
                if self._stopping.is_set():
                    sandbox.close()
                    return
                self._ready.put(sandbox)
