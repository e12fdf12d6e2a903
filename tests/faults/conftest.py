"""Fault-test helpers: a killable upstream process on loopback, free ports, bounded waits."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentevo.config import AgentevoConfig, ResilienceConfig
from agentevo.tasks import Task
from tests.agents.scripts import ADD_TASK

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_tasks(n: int) -> list[Task]:
    """``n`` copies of the ADD task under their own ids (the scripted upstream solves exactly this task)."""
    return [ADD_TASK.model_copy(update={"id": f"test/add-{i}"}) for i in range(n)]


def settings(tmp_path: Path, **resilience: object) -> AgentevoConfig:
    return AgentevoConfig(archives_dir=tmp_path, resilience=ResilienceConfig(**resilience))


def wait_until(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.1) -> None:
    """Poll ``condition`` until true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


class UpstreamProcess:
    """``tests/faults/upstream.py`` in its own process on ``port``: started, killed and started again by a test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, *, delay: float = 0.0, die_at: int = 0) -> UpstreamProcess:
        cmd = [sys.executable, "-m", "tests.faults.upstream", "--port", str(self.port), "--delay", str(delay)]
        self.proc = subprocess.Popen(
            [*cmd, "--die-at", str(die_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    @property
    def dead(self) -> bool:
        return self.proc is None or self.proc.poll() is not None


@pytest.fixture
def upstream_process():
    upstream = UpstreamProcess(free_port())
    yield upstream
    upstream.kill()
