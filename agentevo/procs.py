"""Processes on Linux, the one way agentevo does it: kill a process group, become non-dumpable, read ``/proc``.

Standard library only, because the same file serves three places: the host imports it as ``agentevo.procs``
(a leaf: the sandbox, server supervision and the watchdog use it); every sandbox image holds a copy next to its supervisor
(``/opt/agentevo/procs.py``, which ``sandboxd.py`` imports as a plain module); and the evaluation
harness receives its source in the spec and builds the module from it in memory (``harness.py``).
"""

from __future__ import annotations

import os
import signal
import time

PR_SET_DUMPABLE = 4

# Fields of /proc/<pid>/stat after the command name, numbered from 0 (proc(5) numbers them from 3).
STATE, PPID, PGRP, UTIME, STIME, STARTTIME = 0, 1, 2, 11, 12, 19
DEAD_STATES = ("Z", "X")  # a zombie waits to be reaped; a dead entry is on its way out
STOPPED_STATES = ("T", "t")  # stopped by a signal, or by a tracer


def kill_group(pgid: int, *, rounds: int = 1, pause: float = 0.0) -> None:
    """SIGKILL every process in group ``pgid``, ``rounds`` times ``pause`` seconds apart while it has members.

    One round ends a group that has stopped growing. A fork bomb adds members while we signal, so code
    that may face one repeats; it stops early once the kernel says the group is gone.
    """
    for round_ in range(rounds):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if round_ + 1 < rounds:
            time.sleep(pause)


def make_nondumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``: same-uid processes can no longer read our memory, environment or file
    descriptors through ``/proc``, nor ptrace us. Best effort (False) on a libc without ``prctl``."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (ImportError, OSError, AttributeError):  # no ctypes, no libc, no prctl
        return False


def stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (see ``STATE`` ...), or None when it is gone.

    The command name is cut at the *last* ``)``: it may itself hold spaces and parentheses.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    _, paren, rest = raw.rpartition(b")")
    return rest.decode("ascii", "replace").split() if paren else None


def state(pid: int | str) -> str | None:
    """The one-letter state of ``pid`` (``R``, ``S``, ``Z``, ``T`` ...), or None when it is gone."""
    fields = stat_fields(pid)
    return fields[STATE] if fields else None


def parent(pid: int | str) -> int | None:
    """The parent pid of ``pid``, or None when it is gone."""
    fields = stat_fields(pid)
    return int(fields[PPID]) if fields else None


def start_time(pid: int | str) -> str | None:
    """The kernel's start time of ``pid`` in clock ticks since boot (tells a reused pid apart), or None."""
    fields = stat_fields(pid)
    return fields[STARTTIME] if fields and len(fields) > STARTTIME else None


def cpu_ticks(pid: int | str) -> int | None:
    """User plus system CPU time ``pid`` has used, in clock ticks (``os.sysconf("SC_CLK_TCK")`` a second)."""
    fields = stat_fields(pid)
    return int(fields[UTIME]) + int(fields[STIME]) if fields and len(fields) > STIME else None


def pids() -> list[int]:
    """Every pid in ``/proc`` (empty where there is no ``/proc``)."""
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    if not os.path.isdir("/proc"):  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for pid in pids():
        fields = stat_fields(pid)
        if fields and len(fields) > PGRP and int(fields[PGRP]) == pgid and fields[STATE] not in DEAD_STATES:
            members.append(pid)
    return members
