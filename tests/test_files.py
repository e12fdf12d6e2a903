"""agentevo.files: JSONL appends, lock files and the cache folder, across real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentevo import files
from agentevo.config import AgentevoConfig
from agentevo.files import LockTimeout, acquire_lock, default_cache_dir, file_lock

WRITERS, LINES, PAD = 3, 100, 20_000  # lines far above PIPE_BUF (4 KiB): only the lock keeps them whole
# Child processes load files.py alone (importing the agentevo package costs seconds of CPU per process).
LOAD = f"import runpy, sys; files = runpy.run_path({files.__file__!r}); "


def _python(code: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOAD + code, *map(str, args)], stdout=subprocess.PIPE)


def test_appends_from_several_processes_stay_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    code = (
        "w = int(sys.argv[2])\n"
        f"for i in range({LINES}): files['append_jsonl'](sys.argv[1], {{'writer': w, 'i': i, 'pad': 'x' * {PAD}}})"
    )
    writers = [_python(code, path, w) for w in range(WRITERS)]
    for writer in writers:
        assert writer.wait(120) == 0
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == WRITERS * LINES
    for w in range(WRITERS):  # each writer's lines, whole and in its own order
        assert [r["i"] for r in rows if r["writer"] == w] == list(range(LINES))


def _holder(path: Path) -> subprocess.Popen:
    # The returned lock is kept: a collected FileLock releases itself.
    proc = _python(
        "lock = files['acquire_lock'](sys.argv[1]); print('held', flush=True); __import__('time').sleep(60)",
        path,
    )
    assert proc.stdout.readline() == b"held\n"
    return proc


def test_a_held_lock_waits_says_so_times_out_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "build.lock"  # the folder is created
    holder = _holder(path)
    try:
        said = []
        with pytest.raises(
            LockTimeout, match=r"another process holds the lock .*build\.lock for more than 0\.3 s"
        ):
            acquire_lock(path, timeout=0.3, waiting=lambda: said.append("waiting"))
        assert said == ["waiting"]

        class Busy(RuntimeError):
            pass

        with pytest.raises(Busy, match="busy"):
            acquire_lock(path, timeout=0, error=lambda message: Busy(f"busy: {message}"))
    finally:
        holder.send_signal(signal.SIGKILL)  # no release: the kernel drops the lock with its holder
        holder.wait()
    started = time.monotonic()
    with file_lock(path, timeout=10):
        assert time.monotonic() - started < 5
        with pytest.raises(LockTimeout):  # one holder at a time, threads of one process included
            acquire_lock(path, timeout=0)
    acquire_lock(path, timeout=0).release()


def test_the_cache_folder_follows_xdg_and_is_the_config_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "agentevo"
    assert AgentevoConfig().cache_dir == tmp_path / "agentevo"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as XDG says
    assert default_cache_dir() == Path.home() / ".cache" / "agentevo"
    monkeypatch.setenv("AGENTEVO_CACHE_DIR", str(tmp_path / "mine"))
    assert AgentevoConfig().cache_dir == tmp_path / "mine"
    assert os.environ["XDG_CACHE_HOME"] == "relative/cache"
