"""Ends a supervised server's process group when the process that started it dies, even by SIGKILL.

The owner runs this file (``python -S -E tether.py LEADER OWNER``) right after it spawned a server in its own
session (so the server's pid is also its process group), which makes the tether the owner's child. Every
``INTERVAL_S`` it looks at two things: when the server's group is empty (stopped, or died) it exits, having
nothing left to guard; when its own parent is no longer ``OWNER``, the owner has died (the kernel re-parents
orphans), and it ends the server's whole group: SIGTERM, so Chroma and vLLM flush, then SIGKILL after
``GRACE_S``.

Why not ``prctl(PR_SET_PDEATHSIG)`` in the server: that signal follows the *thread* that forked, and servers are
(re)started from watchdog threads that end long before their owner does. Why the parent link rather than polling
the owner's pid: a pid may be reused, a parent link cannot lie. It is run as a file and imports only the
standard library and ``procs.py`` (never the ``agentevo`` package), so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time

if __name__ == "__main__":  # run as a file: procs.py is a plain module, as beside sandboxd.py in the images
    sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sandbox"))
    import procs
else:
    from agentevo.sandbox import procs

INTERVAL_S = 0.5
GRACE_S = 10.0  # SIGTERM to SIGKILL: Chroma and vLLM need a few seconds to flush and free their workers
KILL_WAIT_S = 5.0  # after SIGKILL, how long the kernel gets to take the group down


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


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
