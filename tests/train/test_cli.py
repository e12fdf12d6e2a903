"""`agentevo finetune` and `agentevo adapters`, run as a user would (subprocesses in a scratch folder; each one
imports agentevo, seconds apiece, so they are few)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from agentevo.runs import RunDir
from agentevo.tasks.model import Split
from agentevo.train.registry import AdapterRegistry, Decision
from tests.test_cli import agentevo as run_cli
from tests.train.recorded import record_answer, task_ids
from tests.train.test_registry import LINEAGE, staged


def agentevo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AGENTEVO_ARCHIVES_DIR": str(cwd / "archives"),
        "AGENTEVO_TRAIN__ADAPTERS_DIR": str(cwd / "ad"),
    }
    return run_cli(*args, cwd=cwd, env=env)


def test_bad_runs_are_one_line_errors_and_nothing_is_trained(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "archives", "failed")
    for attempt in range(2):
        record_answer(run, task_ids(Split.train, 1)[0], attempt, "What is 2 + 2?", "5", False)
    done = agentevo("finetune", "--run", "failed", cwd=tmp_path)
    assert done.returncode == 1 and "error: all 2 judged episodes failed: RFT needs" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "ad").glob("agent-v*"))


def test_adapters_list_and_rollback(tmp_path: Path) -> None:
    nothing = agentevo("adapters", "rollback", cwd=tmp_path)
    assert nothing.returncode == 1 and "nothing to roll back" in nothing.stderr
    registry = AdapterRegistry(tmp_path / "ad")
    registry.commit(staged(registry), {**LINEAGE, "metrics": {"steps": 8, "train_loss": 1.25}})
    registry.decide(
        Decision(action="promote", candidate="agent-v1", previous=None, active=None, reason="2/2 vs 0/2")
    )
    listed = agentevo("adapters", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "agent-v1" in listed.stdout and "1.250" in listed.stdout and "promote: 2/2 vs 0/2" in listed.stdout
    assert "active: agent-v1" in listed.stdout
    undone = agentevo("adapters", "rollback", cwd=tmp_path)
    assert undone.returncode == 0 and "active adapter: none (the base model) (was agent-v1)" in undone.stdout
    assert json.loads((tmp_path / "ad" / "active.json").read_text())["active"] is None
    unknown = agentevo("adapters", "promote", "agent-v7", cwd=tmp_path)
    assert unknown.returncode == 1 and "no adapter 'agent-v7'" in unknown.stderr
