"""`agentevo finetune` and `agentevo adapters`, run as a user would (subprocesses in a scratch folder; each one
imports agentevo, seconds apiece, so they are few)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import run_rows
from agentevo.llm.model_store import ensure_embedded_model
from agentevo.runs import RunDir
from agentevo.tasks.model import Split
from agentevo.train.datasets import read_card
from agentevo.train.registry import ADAPTER_FILES, AdapterRegistry, Decision, base_fingerprint
from tests.llm.conftest import SECRET, TRAIN_QUESTIONS, free_port
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


@pytest.mark.slow
def test_bad_runs_are_one_line_errors_and_nothing_is_trained(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "archives", "failed")
    for attempt in range(2):
        record_answer(run, task_ids(Split.train, 1)[0], attempt, "What is 2 + 2?", "5", False)
    done = agentevo("finetune", "--run", "failed", cwd=tmp_path)
    assert done.returncode == 1 and "error: all 2 judged episodes failed: RFT needs" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "ad").glob("agent-v*"))


@pytest.mark.model
def test_finetune_trains_an_adapter_on_the_embedded_model_into_the_registry(tmp_path: Path) -> None:
    """The installed console script, end to end: a recorded run -> a dataset -> 2 real LoRA steps (CPU)."""
    run = RunDir(tmp_path / "archives", "answered")
    for task, question in zip(task_ids(Split.train, 4), TRAIN_QUESTIONS, strict=False):
        record_answer(run, task, 0, question, SECRET, True)
    # One torch thread: on two cores shared with other work, two threads spin against each other (a step took
    # 25-30 s with two, 5 s with one, at load average 6).
    env = {**os.environ, "AGENTEVO_ARCHIVES_DIR": str(tmp_path / "archives"),
           "AGENTEVO_TRAIN__ADAPTERS_DIR": str(tmp_path / "ad"), "AGENTEVO_TRAIN__THREADS": "1"}  # fmt: skip
    script = Path(sys.executable).parent / "agentevo"
    t0 = time.monotonic()
    done = subprocess.run(
        [str(script), "finetune", "--run", "answered", "--recipe", "rft", "--max-steps", "2"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "4 train rows from 4 tasks" in done.stderr
    registry = AdapterRegistry(tmp_path / "ad")
    (lineage,) = registry.versions()
    folder = registry.path(lineage.name)
    assert lineage.name == "agent-v1" and f"adapter agent-v1: {folder} (2 steps" in done.stdout
    assert all((folder / name).stat().st_size > 0 for name in ADAPTER_FILES)
    model_dir = ensure_embedded_model(AgentevoConfig().cache_dir)
    assert lineage.base_model_sha256 == base_fingerprint(model_dir) and lineage.parent is None
    card = read_card(Path(lineage.dataset))
    assert Path(lineage.dataset).parent == (tmp_path / "ad" / "datasets").resolve()
    assert card.runs == ["answered"] and lineage.recipe == "rft" and lineage.data_sha256 == card.data_sha256
    assert lineage.metrics["steps"] == 2 and lineage.metrics["rows"] == 4 and lineage.metrics["tokens"] > 0
    assert lineage.config["max_steps"] == 2 and lineage.config["threads"] == 1
    assert registry.active() is None  # trained, not promoted
    assert not list(tmp_path.glob("ad/.staging-*")) and not list(tmp_path.glob("ad/.work/*/checkpoint-*"))
    print(f"agentevo finetune, 2 steps on the embedded model: {seconds:.1f} s")


@pytest.mark.timeout(1800)  # a handful of short replies, each minutes long on cores shared with other work
@pytest.mark.model
def test_finetune_samples_and_plays_on_the_embedded_model_before_training(tmp_path: Path) -> None:
    """`agentevo finetune --sample`: a B-STaR round and one self-play proposal from the embedded model on llama.cpp
    (short replies, one task, one sample), judged in the sandbox, recorded as a run that joins the given one."""
    run = RunDir(tmp_path / "archives", "answered")
    for task, question in zip(task_ids(Split.train, 2), TRAIN_QUESTIONS, strict=False):
        record_answer(run, task, 0, question, SECRET, True)  # rows to train on whatever the sampling gives
    env = {**os.environ, "AGENTEVO_ARCHIVES_DIR": str(tmp_path / "archives"),
           "AGENTEVO_TRAIN__ADAPTERS_DIR": str(tmp_path / "ad"), "AGENTEVO_TRAIN__THREADS": "1",
           "AGENTEVO_TRAIN__TEMPERATURES": "[0.8]", "AGENTEVO_TRAIN__PROBE_TASKS": "1",
           "AGENTEVO_LLM__BACKBONE": "llamacpp", "AGENTEVO_LLM__LLAMACPP__PORT": str(free_port()),
           "AGENTEVO_LLM__LLAMACPP__PARALLEL": "1",
           "AGENTEVO_LLM__MAX_TOKENS": "160", "AGENTEVO_LLM__TIMEOUT": "900", "AGENTEVO_LLM__MAX_RETRIES": "0"}  # fmt: skip
    script = Path(sys.executable).parent / "agentevo"
    args = [
        "finetune",
        "--run",
        "answered",
        "--sample",
        "builtin",
        "--limit",
        "1",
        "--k",
        "1",
        "--self-play",
        "1",
    ]
    done = subprocess.run(
        [str(script), *args, "--max-steps", "1"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=1500
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sampled 1 train tasks of builtin: temperature 0.8 (probed [0.8])" in done.stderr
    assert "self-play kept " in done.stderr and "adapter agent-v1:" in done.stdout
    (sampled,) = [p for p in (tmp_path / "archives").iterdir() if (p / "gathered.json").is_file()]
    gathered = json.loads((sampled / "gathered.json").read_text())
    assert gathered["suite"] == "builtin" and gathered["selfplay"]["proposals"] == 1
    (proposal,) = [json.loads(x) for x in (sampled / "proposals.jsonl").read_text().splitlines()]
    assert proposal["kept"] or proposal["refusal"]  # its fate, whatever the 135M model proposed
    rows = run_rows(sampled)
    assert [(r.task_id, r.attempt) for r in rows if r.task_id == "builtin/add"] == [("builtin/add", 0)]
    assert all(
        r.detail["visible"] is not None for r in rows if r.task_id == "builtin/add"
    )  # its example was checked
    card = read_card(Path(AdapterRegistry(tmp_path / "ad").get("agent-v1").dataset))
    assert sorted(card.runs) == sorted(["answered", sampled.name])
    print(f"finetune --sample: proposal {proposal['refusal'] or 'kept'} ({proposal['detail']}); rows {rows}")


@pytest.mark.slow
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
