"""Where the tools act. In isolated mode that is this container's own /workspace.

Anything with ``run``, ``read`` and ``write`` works as a workspace: the SDK passes one that
forwards to a sandbox from outside.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Protocol


class Workspace(Protocol):
    root: str

    def run(self, command: str, timeout: float) -> tuple[int, str]:
        """Run a shell command in ``root``; return (exit code, stdout+stderr)."""

    def read(self, path: str) -> str: ...

    def write(self, path: str, content: str) -> None: ...


class LocalWorkspace:
    """A folder on this machine (inside the sandbox, in isolated mode)."""

    def __init__(self, root: str = "/workspace") -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return Path(path) if os.path.isabs(path) else Path(self.root) / path

    def run(self, command: str, timeout: float) -> tuple[int, str]:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return 124, out.decode(errors="replace") + f"\n[timed out after {timeout:g} s]"
        return proc.returncode, out.decode(errors="replace")

    def read(self, path: str) -> str:
        return self._path(path).read_text(errors="replace")

    def write(self, path: str, content: str) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
