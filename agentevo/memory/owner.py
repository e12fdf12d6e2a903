"""Who owns a memory directory: the writer lock, the server record, and taking over from an owner that died.

A directory has one owning process at a time, the holder of ``.agentevo-memory.lock`` (the kernel drops the lock
when its holder dies, however it dies). An owner that serves the directory (``MemoryService``) also writes
``server.json``: the url, its server's pid and its own, each with its kernel start time (a reused pid is not
the same process). Readers trust a record only while its owner lives. A record found by the next holder of the
lock was left by an owner that died: a server it names that still runs is ended (normally its tether already
ended it, ``agentevo/supervision.py``), the record is removed, and the new owner says so. Nothing the old server
acknowledged is lost: Chroma commits each write to its SQLite log before it answers.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from agentevo import procs
from agentevo.files import write_json_atomic
from agentevo.progress import Log, progress
from agentevo.supervision import end_group, running

LOCK_FILE = ".agentevo-memory.lock"
SERVER_FILE = "server.json"


class ServerRecord(BaseModel):
    """``server.json``: where a directory is served, and which processes serve it."""

    url: str
    pid: int  # the server (leader of its own process group)
    started: str  # its kernel start time
    owner: int  # the process that started the server and holds the lock
    owner_started: str


def lock_path(path: Path) -> Path:
    return Path(path) / LOCK_FILE


def alive(pid: int, started: str) -> bool:
    """Whether ``pid`` still runs and is the process that was started at ``started`` (not a reused pid)."""
    return running(pid) and procs.start_time(pid) == started


def write_record(path: Path, url: str, server_pid: int) -> None:
    """Announce this process's server of ``path`` (call it holding the lock, once the server answers)."""
    me = os.getpid()
    record = ServerRecord(
        url=url,
        pid=server_pid,
        started=procs.start_time(server_pid) or "",
        owner=me,
        owner_started=procs.start_time(me) or "",
    )
    write_json_atomic(Path(path) / SERVER_FILE, record.model_dump())


def read_record(path: Path) -> ServerRecord | None:
    """The record in ``path``, or None when there is none or it cannot be read."""
    try:
        return ServerRecord.model_validate_json((Path(path) / SERVER_FILE).read_text())
    except (OSError, ValidationError):
        return None


def remove_record(path: Path) -> None:
    (Path(path) / SERVER_FILE).unlink(missing_ok=True)


def served_url(path: Path) -> str | None:
    """The url in ``path``'s record while its owner lives (a dead owner's server is on its way out)."""
    record = read_record(path)
    return record.url if record and alive(record.owner, record.owner_started) else None


def take_over(path: Path, log: Log = progress) -> None:
    """Clear what a dead owner left in ``path``; call it right after taking the lock (so no owner lives)."""
    if not (Path(path) / SERVER_FILE).exists():
        return
    record = read_record(path)
    if record is None:
        log(f"memory at {path}: removed an unreadable {SERVER_FILE} left by an owner that died; taking over")
    elif alive(record.pid, record.started):
        end_group(record.pid)
        log(
            f"memory at {path}: its owner (pid {record.owner}) died and left its server (pid {record.pid}) "
            "running; stopped that server and taking over (acknowledged writes are kept)"
        )
    else:
        log(f"memory at {path}: its owner (pid {record.owner}) died; its server is gone too; taking over")
    remove_record(path)
