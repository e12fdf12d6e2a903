"""Seeing a supervised server die with its owner: its tethers (``agentevo/supervision.py``) and its process group."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from agentevo import procs
from agentevo.supervision import TETHER, running

GONE_WITHIN_S = 30.0


def tethers(server_pid: int) -> list[int]:
    """Live tether processes guarding ``server_pid`` (found by their command line)."""
    found = []
    for pid in procs.pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(TETHER).encode() in argv and str(server_pid).encode() in argv and running(pid):
            found.append(pid)
    return found


def wait_gone(pgid: int, seconds: float = GONE_WITHIN_S) -> float:
    """Seconds until process group ``pgid`` has no live member; fails after ``seconds``. Its tether (the one
    with nothing left to guard) must be gone by then too."""
    t0 = time.monotonic()
    while procs.group_members(pgid):
        assert time.monotonic() - t0 < seconds, f"the server (group {pgid}) outlived its owner"
        time.sleep(0.1)
    gone = time.monotonic() - t0
    while tethers(pgid):
        assert time.monotonic() - t0 < seconds, f"the tether of group {pgid} outlived it"
        time.sleep(0.1)
    return gone


def sigkill(proc: subprocess.Popen[str]) -> None:
    """``kill -9`` the owner: no finalizer, no atexit, no signal handler runs in it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
