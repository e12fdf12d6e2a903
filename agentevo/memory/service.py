"""The one writer of a memory directory as a server: Chroma's own server (``chroma run``) under our lock.

When several processes need one library (``agentevo run`` and its CLI readers, the evolution loop, concurrent
writers), they never open the directory themselves (Chroma loses vectors that way): the service owns it and
everyone connects over HTTP on loopback. The service holds the directory's writer lock for its whole life and
writes ``server.json`` (``owner.py``), so a later ``Library.open`` of the same directory finds it and connects.
The server dies with the process that started it, even one killed by SIGKILL (``ServerProcess``); the next
owner of the directory then takes over (``owner.take_over``).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Self

import httpx
from filelock import FileLock

from agentevo.memory.owner import remove_record, served_url, write_record
from agentevo.memory.store import MemoryStoreError, take_lock
from agentevo.supervision import ServerProcess

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
    """The url of the service that owns ``path``, if its owner lives and it answers."""
    url = served_url(path)
    return url if url and healthy(url) else None


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
        self._lock: FileLock | None = None
        self._proc: ServerProcess | None = None

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
                self._proc = ServerProcess(cmd, log=log, env=os.environ | {"NO_COLOR": "1"})
            self._wait(log_path)
        except BaseException:
            self.stop()
            raise
        write_record(self.path, self.url, self._proc.pid)
        return self

    def _wait(self, log_path: Path) -> None:
        assert self._proc is not None
        self._proc.wait_ready(
            lambda: healthy(self.url),
            self.startup_timeout,
            what=f"the memory server for {self.path}",
            log_path=log_path,
            error=MemoryStoreError,
            pause=0.1,
        )

    def stop(self) -> None:
        """SIGTERM (Chroma flushes), SIGKILL after ``STOP_GRACE_S``; then release the directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop(STOP_GRACE_S)
        remove_record(self.path)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
