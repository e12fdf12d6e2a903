"""Whole runs under faults of the machine: the Docker engine restarted mid-run, and Ctrl-C during `agentevo run`.

The model is the scripted upstream process (``tests/faults/upstream.py``, control flow); sandboxes, the gateway,
the evaluator and the CLI are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from agentevo.agents import seed_agent_dir
from agentevo.evaluate import ResultsStore
from agentevo.evaluate.results import run_rows
from agentevo.gateway import HTTPBackend, TrajectoryRecorder
from agentevo.orchestrate import run_suite
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.sandbox.docker_host import LABEL_RUN, docker_client
from tests.faults.conftest import ROOT, UpstreamProcess, add_tasks, settings, wait_until

ENSURE_SYSTEM = ROOT / "scripts" / "ensure-system.sh"


def containers_of(run_id: str) -> list[str]:
    entries = docker_client().api.containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
    return [entry["Names"][0] for entry in entries]


def dockerd_pid() -> int | None:
    found = subprocess.run(
        ["pgrep", "-x", "dockerd"], capture_output=True, text=True, check=False
    ).stdout.split()
    return int(found[0]) if found else None


def restart_dockerd() -> None:
    """Stop the engine (SIGTERM, as a restart does) and bring it back with the project's own script."""
    pid = dockerd_pid()
    assert pid is not None, "no dockerd runs here"
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: dockerd_pid() is None, 90, "dockerd to stop")
    subprocess.run(["bash", str(ENSURE_SYSTEM)], check=True, timeout=120, capture_output=True)


@pytest.mark.timeout(600)
def test_docker_engine_restarted_mid_run(tmp_path, sandbox_image, upstream_process: UpstreamProcess):
    upstream_process.start(delay=1.0)  # slow answers: episodes are mid-way when the engine goes
    run = RunDir(tmp_path)
    restarted: list[float] = []

    def restart_after_first_call() -> None:
        wait_until(lambda: TrajectoryRecorder(run.path).path.exists(), 120, "the first model call")
        started = time.monotonic()
        restart_dockerd()
        restarted.append(time.monotonic() - started)

    restarter = threading.Thread(target=restart_after_first_call)
    restarter.start()
    try:
        rows = run_suite(
            settings(tmp_path, attempt_retries=3, docker_wait=180), add_tasks(4), agent_dir=seed_agent_dir(),
            run=run, parallel=2, backend=HTTPBackend(upstream_process.url, "upstream", timeout=30),
        )  # fmt: skip
        restarter.join(240)
    finally:
        subprocess.run(
            ["bash", str(ENSURE_SYSTEM)], check=True, timeout=120, capture_output=True
        )  # leave it running
    assert restarted, "the engine was not restarted during the run"
    assert sorted(r.task_id for r in rows) == [f"test/add-{i}" for i in range(4)]
    # Resumed: every attempt passed, those the restart hit on a retry once the engine answered again.
    assert all(r.passed and r.error_kind is None for r in rows), rows
    with ResultsStore(run.path / RESULTS_DB) as store:
        spoiled = store.spoiled(run.run_id)
    assert spoiled and {s.error_kind.value for s in spoiled} <= {"docker_error", "sandbox_error"}
    wait_until(lambda: not containers_of(run.run_id), 30, "the run's containers to be gone")
    print(f"measured: engine restart took {restarted[0]:.1f} s; {len(spoiled)} tries spoiled and retried")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_during_agentevo_run(tmp_path, sandbox_image, upstream_process: UpstreamProcess, stop):
    upstream_process.start(delay=1.5)
    env = {
        **os.environ, "AGENTEVO_ARCHIVES_DIR": str(tmp_path), "AGENTEVO_LLM__BACKBONE": "openai",
        "AGENTEVO_LLM__BASE_URL": upstream_process.url, "AGENTEVO_LLM__MODEL": "upstream", "OPENAI_API_KEY": "test",
    }  # fmt: skip
    cmd = [sys.executable, "-m", "agentevo", "run", "--suite", "builtin", "--split", "all", "--limit", "6"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        try:
            wait_until(lambda: any(map(run_rows, tmp_path.iterdir())), 180, "the first row")
        except BaseException:
            proc.kill()
            out, err = proc.communicate(timeout=30)
            print(f"agentevo run printed:\n{out[-3000:]}\n{err[-5000:]}")  # why it never got a row
            raise
        interrupted = time.monotonic()
        proc.send_signal(stop)  # SIGTERM ends it as Ctrl-C does (a backbone server it started stops too)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    took = time.monotonic() - interrupted
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out and "cannot schedule" not in err, err
    assert "interrupted" in err
    [run_path] = [p.parent for p in tmp_path.glob("*/results.jsonl")]  # the view, written as the run ended
    lines = [json.loads(line) for line in (run_path / "results.jsonl").read_text().splitlines()]
    with ResultsStore(run_path / RESULTS_DB) as store:
        rows = store.rows()
    assert 1 <= len(lines) < 6 and len(rows) == len(lines)  # the rows so far, whole, and nothing after
    assert {r.task_id for r in rows} == {line["task_id"] for line in lines}
    assert "interrupted" in json.loads((run_path / "run.json").read_text())
    wait_until(lambda: not containers_of(run_path.name), 30, "the run's containers to be gone")
    print(f"measured: agentevo run exited {took:.1f} s after {stop.name}")
