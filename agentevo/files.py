"""Files that readers and other processes can trust: one helper each for the whole host package.

Atomic replacement, JSONL appends, cross-process locks and the cache folder. The sandbox side has
its own, standard-library-only helpers (``agentevo/procs.py``, ``sandboxd.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import BaseModel


class LockTimeout(TimeoutError):
    """Another process held a lock file for longer than we were willing to wait."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/agentevo``, else ``~/.cache/agentevo``: the default of the configured ``cache_dir``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG specification says.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "agentevo"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader sees the old file or the new one, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """``data`` as indented JSON, written atomically (datetimes and paths as strings)."""
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file written by ``write_json_atomic``; {} when it is missing or unreadable (not written yet)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def append_jsonl(path: Path, record: BaseModel | Mapping[str, Any]) -> None:
    """Append ``record`` to ``path`` (created if missing) as one JSON line.

    The line is one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock`` of the file
    itself, so threads and processes appending to one file never interleave or tear lines, and a
    reader sees whole lines only (the last one may be missing, never half of it).
    """
    text = record.model_dump_json() if isinstance(record, BaseModel) else json.dumps(record)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)  # closing drops the lock


def acquire_lock(
    path: Path,
    *,
    timeout: float | None = None,
    waiting: Callable[[], object] | None = None,
    error: Callable[[str], Exception] = LockTimeout,
) -> FileLock:
    """Take the exclusive lock file ``path`` (its folder is created), shared by threads and processes.

    The kernel drops the lock when its holder dies, so a crash never leaves a stale one. When another
    holder has it, ``waiting`` is called once (to tell the user why nothing happens), then this waits
    ``timeout`` seconds at most (None: as long as it takes) and raises ``error`` (the caller's own
    error type; :class:`LockTimeout` by default) naming the file; ``timeout=0`` never waits.
    Returns the held lock: ``release()`` it, or use :func:`file_lock`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if waiting is not None:
            waiting()
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            held = f" for more than {timeout:g} s" if timeout else ""
            raise error(f"another process holds the lock {path}{held}") from None
    return lock


@contextlib.contextmanager
def file_lock(path: Path, **how: Any) -> Iterator[None]:
    """Hold the lock file ``path`` for the ``with`` block; ``how`` is what :func:`acquire_lock` takes."""
    lock = acquire_lock(path, **how)
    try:
        yield
    finally:
        lock.release()
