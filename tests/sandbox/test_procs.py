"""agentevo.procs on real processes: group kills, non-dumpable, /proc/<pid>/stat parsing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from agentevo import procs
from agentevo.sandbox.recipes import supervisor_files

PROCS_DIR = Path(procs.__file__).parent
# A command name with a space and both parentheses, as hostile code may choose: the parser must cut at the last ")".
ODD_NAME = "a) b (c"


def _spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)


def _wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_stat_fields_survive_an_odd_command_name() -> None:
    proc = _spawn(
        f"open('/proc/self/comm', 'w').write({ODD_NAME!r}); import sys, time; print('ready', flush=True); "
        "time.sleep(30)"
    )
    try:
        assert proc.stdout.readline() == b"ready\n"
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == ODD_NAME
        assert procs.parent(proc.pid) == os.getpid()
        assert procs.state(proc.pid) in ("S", "R")
        assert procs.stat_fields(proc.pid)[procs.PGRP] == str(proc.pid)  # its own session and group
        assert procs.start_time(proc.pid).isdigit()
        assert procs.start_time(proc.pid) != procs.start_time(os.getpid())
        assert procs.cpu_ticks(proc.pid) >= 0
        os.kill(proc.pid, 19)  # SIGSTOP
        assert _wait_until(lambda: procs.state(proc.pid) in procs.STOPPED_STATES)
    finally:
        proc.kill()
        proc.wait()
    for gone in (procs.stat_fields, procs.state, procs.parent, procs.start_time, procs.cpu_ticks):
        assert gone(proc.pid) is None


def test_kill_group_ends_a_group_that_keeps_forking() -> None:
    # Each member starts another and exits: one SIGKILL may miss the newest, repeated rounds do not.
    proc = _spawn(
        "import os, time\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    if os.fork():\n"
        "        os._exit(0)\n"
        "    time.sleep(0.001)\n"
    )
    try:
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.2)  # a few hundred generations on
        procs.kill_group(proc.pid, rounds=50, pause=0.01)
        proc.wait(10)
        assert _wait_until(lambda: not procs.group_members(proc.pid))
        procs.kill_group(proc.pid)  # a group that is gone is not an error
    finally:  # never leave a runaway chain on the host, even when the assertions failed (it would eat a core)
        deadline = time.monotonic() + 30
        while procs.group_members(proc.pid) and time.monotonic() < deadline:
            procs.kill_group(proc.pid, rounds=100)


def test_kill_group_ends_a_whole_tree_in_one_round() -> None:
    proc = _spawn(
        "import os, time\n"
        "leader = os.getpid()\n"
        "for _ in range(3):\n"  # 2**3 processes: children and grandchildren, all in the leader's group
        "    os.fork()\n"
        "if os.getpid() == leader:\n"
        "    print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    assert proc.stdout.readline() == b"ready\n"
    assert _wait_until(lambda: len(procs.group_members(proc.pid)) == 8)
    procs.kill_group(proc.pid)
    assert _wait_until(lambda: not procs.group_members(proc.pid))
    proc.wait()


def test_group_members_leaves_out_zombies_and_other_groups() -> None:
    proc = _spawn("import time; print('ready', flush=True); time.sleep(30)")
    assert proc.stdout.readline() == b"ready\n"
    assert procs.group_members(proc.pid) == [proc.pid]
    assert os.getpid() not in procs.group_members(proc.pid)
    procs.kill_group(proc.pid)
    assert _wait_until(lambda: procs.state(proc.pid) in procs.DEAD_STATES)  # a zombie until we reap it
    assert procs.group_members(proc.pid) == []
    proc.wait()


def test_make_nondumpable_clears_the_flag_in_that_process_only() -> None:
    check = "import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    code = (
        f"import sys; sys.path.insert(0, {str(PROCS_DIR)!r}); import procs; {check}; "
        f"print(procs.make_nondumpable()); {check}"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["1", "True", "0"]
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "1"


def test_sandboxd_runs_as_a_script_beside_procs(tmp_path: Path) -> None:
    """As in the image: /opt/agentevo/sandboxd.py runs as a script and imports procs.py beside it."""
    for path in supervisor_files():  # what every image's /opt/agentevo/ holds
        shutil.copy(path, tmp_path / path.name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-u", str(tmp_path / "sandboxd.py"), "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--ttl" in proc.stdout
