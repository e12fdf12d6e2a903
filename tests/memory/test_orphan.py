"""The memory server dies with its owner, even one killed by SIGKILL, and the next owner takes over.

Real processes throughout: an owner process starts the service (as ``agentevo run --memory`` does, or
``agentevo memory serve``) and writes a lesson; the test kills it with SIGKILL, then watches the real Chroma
server go and opens the directory again as a new owner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentevo import procs
from agentevo.memory import Library, MemoryConfig
from agentevo.memory.episodes import run_memory
from agentevo.memory.owner import SERVER_FILE, read_record
from agentevo.memory.service import healthy, running_url
from tests.llm.orphans import sigkill, tethers, wait_gone
from tests.memory.conftest import lesson

ROOT = Path(__file__).resolve().parents[2]
TRIGGER = "the task parses dates written as day/month/year"
ADVICE = "split on '/' and build datetime.date(year, month, day)"

RUN_OWNER = f"""
import sys, time
from pathlib import Path
from agentevo.memory import MemoryConfig
from agentevo.memory.episodes import run_memory
from tests.memory.conftest import lesson
with run_memory(MemoryConfig(enabled=True), Path(sys.argv[1]), run_id="owner") as memory:
    memory.library.add(lesson({TRIGGER!r}, {ADVICE!r}, "owner-run"))
    print(memory.library.records.where, flush=True)
    time.sleep(600)
"""


def start_owner(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """A real owner process and the url it printed once its service is up (and, for RUN_OWNER, written)."""
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise AssertionError(f"the owner did not start its memory service:\n{proc.communicate()[1][-3000:]}")
    return proc, url


def test_a_run_killed_by_sigkill_takes_its_memory_server_along(tmp_path, capfd):
    path = tmp_path / "memory"
    owner, url = start_owner([sys.executable, "-c", RUN_OWNER, str(path)])
    server = read_record(path).pid
    assert healthy(url) and len(tethers(server)) == 1

    sigkill(owner)
    gone = wait_gone(server)
    assert not healthy(url)
    print(f"memory server gone {gone:.2f} s after its owner's SIGKILL")

    assert (path / SERVER_FILE).exists() and running_url(path) is None  # left behind, and not trusted
    with run_memory(MemoryConfig(enabled=True), path, run_id="next") as memory:  # the next run takes over
        hits = memory.library.retrieve("parse a date given as 31/12/1999", 3)
        assert [hit.lesson.lesson for hit in hits] == [ADVICE]
    assert "died; its server is gone too; taking over" in capfd.readouterr().err
    assert not (path / SERVER_FILE).exists()


def test_a_left_over_server_is_stopped_by_the_next_owner(tmp_path, capfd):
    """`agentevo memory serve` killed together with its tether (as an older agentevo left servers): the next
    owner ends the orphan before it opens the directory, so there is never a second writer."""
    path = tmp_path / "memory"
    env = os.environ | {"AGENTEVO_MEMORY__PATH": str(path)}
    owner, url = start_owner([sys.executable, "-m", "agentevo", "memory", "serve", "--port", "0"], env)
    server = read_record(path).pid
    with Library.open(MemoryConfig(), default_path=path) as library:  # through the service
        assert library.records.where == url
        library.add(lesson(TRIGGER, ADVICE, "serve-client"))

    for tether in tethers(server):
        os.kill(tether, signal.SIGKILL)
    sigkill(owner)
    time.sleep(1.0)
    assert healthy(url) and running_url(path) is None  # an orphan answers, but its owner is dead

    with Library.open(MemoryConfig(), default_path=path) as library:  # owns the directory in this process
        assert library.records.where == str(path)
        assert not procs.group_members(server)
        assert [x.lesson for x in library.lessons()] == [ADVICE]
    err = capfd.readouterr().err
    assert f"left its server (pid {server}) running; stopped that server and taking over" in err
