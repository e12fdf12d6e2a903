"""The one writer of a memory directory as a server: Chroma's own server (``chroma run``) under our lock.

When several processes need one library (``agentevo run`` and its CLI readers, the evolution loop, concurrent
writers), they never open the directory themselves (Chroma loses vectors that way): the service owns it and
everyone connects over HTTP on loopback. The service holds the directory's writer lock for its whole life and
writes ``server.json`` (url, pid), so a later ``Library.open`` of the same directory finds it and connects.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Self

import httpx

from agentevo.llm.supervised import kill_group, tail
from agentevo.memory.store import MemoryStoreError, take_lock

SERVER_FILE = "server.json"
LOG_FILE = "server.log"
HOST = "127.0.0.1"
STOP_GRACE_S = 10.0


def chroma_binary() -> str:
    """The ``chroma`` command of this environment (installed with the chromadb wheel)."""
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        raise MemoryStoreError("the `chroma` command is missing: pip install -e . (it comes with chromadb)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def running_url(path: Path) -> str | None:
    """The url of the service that owns ``path``, if one answers."""
    try:
        url = json.loads((Path(path) / SERVER_FILE).read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if healthy(url) else None


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/heartbeat", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


class MemoryService:
    """``chroma run`` on ``path``, loopback only; a context manager (``url`` is where clients connect)."""

    def __init__(self, path: Path, port: int = 0, *, startup_timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.startup_timeout = startup_timeout
        self._lock = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Self:
        self._lock = take_lock(self.path)
        log_path = self.path / LOG_FILE
        try:
            with log_path.open("ab") as log:
                cmd = [
                    chroma_binary(),
                    "run",
                    "--path",
                    str(self.path),
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                ]
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=os.environ | {"NO_COLOR": "1"},
                )
            self._finalizer = weakref.finalize(self, kill_group, self._proc.pid)
            self._wait(log_path)
        except BaseException:
            self.stop()
            raise
        (self.path / SERVER_FILE).write_text(json.dumps({"url": self.url, "pid": self._proc.pid}))
        return self

    def _wait(self, log_path: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while not healthy(self.url):
            if self._proc.poll() is not None:
                raise MemoryStoreError(
                    f"the memory server for {self.path} exited with code {self._proc.returncode} while starting "
                    f"({log_path}); last lines:\n{tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise MemoryStoreError(
                    f"the memory server for {self.path} did not answer within {self.startup_timeout:.0f} s "
                    f"({log_path}); last lines:\n{tail(log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (Chroma flushes), SIGKILL after ``STOP_GRACE_S``; then release the directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if self._finalizer is not None:
                self._finalizer.detach()
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.wait()
            except ProcessLookupError:
                proc.wait()
        (self.path / SERVER_FILE).unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
