"""Server processes agentevo starts (llama.cpp, vLLM, the memory service's Chroma): the one way to start one, wait
until it is ready, end its whole process group, and make sure it never outlives its owner.

:class:`ServerProcess` spawns a command in its own session (its pid is also its process group) and starts a
*tether*: this very file, run as ``python -S -E supervision.py LEADER OWNER``, a small child of the owner. Every
``INTERVAL_S`` the tether looks at two things: when the server's group is empty (stopped, or died) it exits, having
nothing left to guard; when its own parent is no longer ``OWNER``, the owner has died (the kernel re-parents
orphans), and it ends the server's whole group: SIGTERM, so Chroma and vLLM flush, then SIGKILL after ``GRACE_S``.

Why not ``prctl(PR_SET_PDEATHSIG)`` in the server: that signal follows the *thread* that forked, and servers are
(re)started from watchdog threads that end long before their owner does. Why the parent link rather than polling
the owner's pid: a pid may be reused, a parent link cannot lie. Standard library and ``procs`` only: run as a
file, the tether never imports the ``agentevo`` package, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

if __name__ == "__main__":  # run as a file (the tether): procs.py lies beside it, on sys.path[0]
    import procs
else:
    from agentevo import procs

INTERVAL_S = 0.5
GRACE_S = 10.0  # SIGTERM to SIGKILL: Chroma and vLLM need a few seconds to flush and free their workers
KILL_WAIT_S = 5.0  # after SIGKILL, how long the kernel gets to take the group down
LOG_TAIL_LINES = 30
TETHER = Path(__file__)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("r", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip()
    except OSError:
        return "(no log)"


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie has already let go of its port, files and memory)."""
    return procs.state(pid) not in (None, *procs.DEAD_STATES)


def guarding(leader: int) -> bool:
    """Whether the group led by ``leader`` still has a live member (checked cheaply while the leader lives)."""
    return running(leader) or bool(procs.group_members(leader))


def wait_empty(pgid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for process group ``pgid`` to have no live member; True when it has none."""
    deadline = time.monotonic() + seconds
    while procs.group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def end_group(pgid: int, grace: float = GRACE_S) -> None:
    """SIGTERM process group ``pgid``, SIGKILL what is left after ``grace`` seconds, and wait until it is gone.

    Also how a new owner ends a server whose owner and tether both died (``agentevo.memory.owner``).
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_empty(pgid, grace):
        procs.kill_group(pgid)
        wait_empty(pgid, KILL_WAIT_S)


def watch(leader: int, owner: int, *, interval: float = INTERVAL_S, grace: float = GRACE_S) -> bool:
    """Guard ``leader``'s group until it ends by itself (False) or ``owner`` dies and it is ended here (True)."""
    while guarding(leader):
        if os.getppid() != owner:
            end_group(leader, grace)
            return True
        time.sleep(interval)
    return False


class ServerProcess:
    """A server command in its own session (so ``pid`` is also its process group), tied to this process's life.

    The server must never outlive its owner: an orphan keeps its port, its memory and (Chroma) its directory.
    A normal exit ends it through a finalizer; a SIGKILLed owner through the tether, from whichever thread it
    was spawned.
    """

    def __init__(
        self, cmd: list[str], *, log: IO[bytes], env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._finalizer = weakref.finalize(self, procs.kill_group, self.pid)
        try:
            self._tether = subprocess.Popen(
                [sys.executable, "-S", "-E", str(TETHER), str(self.pid), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            self._finalizer()
            self.proc.wait()
            raise

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait_ready(
        self,
        ready: Callable[[], bool],
        timeout: float,
        *,
        what: str,
        log_path: Path,
        error: type[Exception],
        pause: float = 0.25,
    ) -> None:
        """Ask ``ready`` every ``pause`` seconds until it says yes; ``error`` (with the last lines of the log) when
        the server exits first or ``timeout`` seconds pass. ``what`` names the server in the message."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                raise error(
                    f"{what} exited with code {code} while starting ({log_path}); last lines:\n{tail(log_path)}"
                )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise error(
                    f"{what} did not become ready within {timeout:.0f} s ({log_path}); last lines:\n"
                    f"{tail(log_path)}"
                )
            time.sleep(pause)

    def stop(self, timeout: float) -> None:
        """SIGTERM to the whole group (servers flush; vLLM's engine core follows its API process), SIGKILL what is
        left after ``timeout``; then the tether, with nothing left to guard, is ended."""
        self._finalizer.detach()
        end_group(self.pid, timeout)
        self.proc.wait(timeout=10)
        self._tether.kill()
        self._tether.wait()


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
