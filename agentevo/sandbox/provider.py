"""The sandbox provider seam: what agentevo asks of wherever its sandboxes run.

A provider starts sandboxes, says whether its engine answers, names a run's live sandboxes and removes
leftovers. What it starts is a ``RunningSandbox``: commands, files in and out, and ``close``. Its failures are
the errors of ``errors.py``, never its backend's own, so no caller outside ``agentevo/sandbox/`` names a backend.
Docker is the one provider (``docker_provider.py``); ``docs/sandbox.md`` says how a second one plugs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, Self

from pydantic import BaseModel

from agentevo.sandbox.config import SandboxConfig

# A file's content, or its content and mode (to keep the executable bit).
FileContent = str | bytes | tuple[bytes, int]


class ExecResult(BaseModel):
    """What a command did. ``output`` is stdout and stderr interleaved, capped head + tail."""

    exit_code: int
    output: str
    truncated: bool
    dropped_bytes: int
    timed_out: bool
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class RunningSandbox(Protocol):
    """One started sandbox as its callers drive it. Every method raises ``SandboxDied`` once the sandbox is gone,
    and ``SandboxOperationError`` for a failed operation inside a live one (a missing file)."""

    started_at: float  # time.time() at start: a pool hands out only sandboxes with lifetime left

    @property
    def name(self) -> str: ...

    @property
    def alive(self) -> bool: ...

    def exec(
        self,
        cmd: str,
        *,
        cwd: str = "/workspace",
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        max_output_bytes: int | None = None,
    ) -> ExecResult:
        """Run ``cmd`` with bash; its process group is killed at ``timeout`` seconds (``config.exec_timeout``)."""
        ...

    def write_file(self, path: str, data: str | bytes, mode: int = 0o644) -> None: ...

    def put_files(self, files: Mapping[str, FileContent], dest: str = "/workspace") -> None: ...

    def put_dir(self, local_dir: str | Path, dest: str = "/workspace") -> None: ...

    def read_file(self, path: str) -> bytes: ...

    def get_tar(self, path: str) -> bytes:
        """A tar stream of ``path`` (file or directory), its last component as the top entry."""
        ...

    def close(self) -> None:
        """Stop and remove the sandbox; safe to call twice."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class SandboxProvider(Protocol):
    """Where sandboxes run. ``start`` raises ``SandboxUnavailable`` when the engine does not answer or refuses,
    ``ImageMissing`` when ``config.image`` is not built, ``SandboxDied`` when the sandbox ends while starting."""

    def start(
        self,
        config: SandboxConfig,
        *,
        run_id: str | None = None,
        env: dict[str, str] | None = None,
        gateway_socket: Path | None = None,
        binds: Mapping[Path, str] | None = None,
    ) -> RunningSandbox:
        """A started sandbox with ``config``'s limits, labelled with ``run_id``; ``env`` reaches every command;
        ``gateway_socket`` and ``binds`` (host path -> path inside) are the only host paths it may see."""
        ...

    def healthy(self, timeout: float = 0.0) -> bool:
        """Whether the engine answers within ``timeout`` seconds (after it failed a sandbox)."""
        ...

    def running(self, run_id: str) -> list[str]:
        """Names of the live sandboxes labelled with ``run_id``."""
        ...

    def reap(self, *, everything: bool = False) -> list[str]:
        """Remove the sandboxes whose owner process is gone or whose lifetime is over (or all of them)."""
        ...
