"""Web tasks through ``run_suite``, the one suite runner: rows, the page's record, and what a run refuses.

A scripted chat model (named as such: control flow, not skill) drives the real web seed agent in its sandbox
against the real browser sandbox.
"""

from __future__ import annotations

import json

import pytest

from agentevo.agents.episode import web_seed_agent_dir
from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ErrorKind, ResultsStore
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.orchestrate import run_suite
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks import SuiteError, load_suite


def test_a_web_task_runs_through_run_suite(tmp_path, web_image, sandbox_image) -> None:
    (task,) = load_suite("miniwob:click-button", split=None)
    run = RunDir(tmp_path)
    backend = ChatModelBackend(ScriptedChatModel(replies=["I am done. stop()"]), "scripted")
    rows = run_suite(
        AgentevoConfig(), [task], agent_dir=web_seed_agent_dir(), run=run, backend=backend, parallel=1
    )
    (row,) = rows
    assert row.task_id == "miniwob/click-button" and not row.passed and row.score == 0.0
    assert row.error_kind is ErrorKind.no_submit  # it stopped before the page ended the episode
    (record,) = [json.loads(line) for line in run.results_path.read_text().splitlines()]  # the JSONL view
    detail = record["detail"]  # the episode's record, kept in the row
    assert detail["stop_reason"] == "stopped" and detail["calls"] == 1 and detail["score"]["done"] is False
    assert [(r.task_id, r.passed) for r in ResultsStore(run.path / RESULTS_DB).rows()] == [
        (row.task_id, False)
    ]


def test_web_and_coding_tasks_do_not_share_a_run(tmp_path) -> None:
    tasks = load_suite("miniwob:click-button", split=None) + load_suite("builtin", split=None, limit=1)
    with pytest.raises(SuiteError, match="all of one kind, these are coding and web tasks"):
        run_suite(AgentevoConfig(), tasks, agent_dir=web_seed_agent_dir(), run=RunDir(tmp_path))
