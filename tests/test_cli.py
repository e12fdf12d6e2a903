"""The `agentevo` command line, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def agentevo(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentevo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow
def test_help_explains_itself():
    out = agentevo("--help").stdout
    for word in ("sandbox", "demo", "--config"):
        assert word in out
    sandbox_help = agentevo("sandbox", "--help").stdout
    for word in ("build", "run", "gc"):
        assert word in sandbox_help


def test_sandbox_run_prints_output_and_exit_code(sandbox_image):
    done = agentevo("sandbox", "run", "--", "echo hello from $(id -un); exit 3")
    assert done.returncode == 3
    assert done.stdout == "hello from agent\n"
    assert "exit code 3" in done.stderr


def test_sandbox_run_argv_form_and_timeout(sandbox_image):
    done = agentevo("sandbox", "run", "--", "python3", "-c", "print('a b')")
    assert done.returncode == 0 and done.stdout == "a b\n"
    slow = agentevo("sandbox", "run", "--timeout", "1", "--", "sleep 30")
    assert slow.returncode == 124 and "timed out" in slow.stderr


def test_sandbox_run_passes_only_named_env(sandbox_image, monkeypatch):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "SECRET_TOKEN": "hunter2", "NAMED": "yes"}
    env.update({k: v for k, v in __import__("os").environ.items() if k.startswith(("DOCKER", "XDG"))})
    done = agentevo("sandbox", "run", "-e", "NAMED", "-e", "X=1", "--", "env", env=env)
    assert "NAMED=yes" in done.stdout and "X=1" in done.stdout
    assert "hunter2" not in done.stdout


@pytest.mark.slow
def test_bad_config_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sandbox:\n  memory: lots\n")
    done = agentevo("--config", str(bad), "sandbox", "gc")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sandbox.memory" in lines[0]


def test_gc_reports(sandbox_image):
    done = agentevo("sandbox", "gc")
    assert done.returncode == 0 and "removed" in done.stderr


def test_results_table_of_a_run(sandbox_image, tmp_path):
    """`agentevo run` on one built-in task with two steps of the embedded model, then `agentevo results`
    (``agentevo demo``, now an evolution, is tested in tests/evolve/test_demo.py)."""
    env = dict(__import__("os").environ, AGENTEVO_ARCHIVES_DIR=str(tmp_path / "archives"))
    done = agentevo(
        "run",
        "--suite",
        "builtin",
        "--split",
        "train",
        "--limit",
        "1",
        "--max-steps",
        "2",
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    [run_dir] = list((tmp_path / "archives").iterdir())
    [row] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert row["task_id"].startswith("builtin/") and row["tokens"] > 0 and 0 <= row["score"] <= 1
    assert "pass@1" in done.stderr and str(run_dir / "results.sqlite") in done.stderr
    (run_dir / "results.jsonl").unlink()  # as after a kill -9: the store has every row, the view is rebuilt
    table = agentevo("results", run_dir.name, env=env)
    assert table.returncode == 0 and row["task_id"] in table.stderr and "pass@1" in table.stderr
    assert [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()] == [row]
    assert agentevo("results", "no-such-run", env=env).returncode == 2
