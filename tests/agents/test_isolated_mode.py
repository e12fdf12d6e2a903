"""Isolated mode: the agent package runs inside the sandbox and reaches the LLM only via the gateway.
A scripted chat model behind the gateway drives it (control flow, not skill)."""

from __future__ import annotations

import shutil
import sqlite3

from agentevo.agents import run_isolated, seed_agent_dir
from agentevo.agents.episode import EpisodeBudget
from agentevo.gateway import ChatModelBackend, Gateway, TrajectoryRecorder
from agentevo.llm.scripted import ScriptedChatModel
from tests.agents.scripts import ADD_TASK, NEVER_SUBMITS, SOLVE_ADD


def scripted_gateway(tmp_path, replies) -> Gateway:
    return Gateway(
        ChatModelBackend(ScriptedChatModel(replies=replies), "scripted"), run_dir=tmp_path, run_id="iso"
    )


def test_isolated_episode_solves_and_records(tmp_path, sandbox_image):
    with scripted_gateway(tmp_path, SOLVE_ADD) as gateway:
        outcome = run_isolated(
            ADD_TASK, seed_agent_dir(), gateway, episode_id="ep1", checkpoint_dir=tmp_path / "ckpt"
        )
    assert outcome.stop_reason == "submitted", outcome.log_tail
    assert outcome.calls == 4 and outcome.tokens > 0  # counted by the gateway, not claimed by the agent
    assert "[act] steps=1" in outcome.log_tail  # steps streamed as they happened
    records = TrajectoryRecorder(tmp_path).read()
    assert (
        len(records) == 4
        and {r.episode_id for r in records} == {"ep1"}
        and {r.task_id for r in records} == {ADD_TASK.id}
    )
    assert records[0].request["tools"]  # the agent sent its tool schemas
    with sqlite3.connect(tmp_path / "ckpt" / "ep1.sqlite") as db:  # the episode can be inspected afterwards
        assert db.execute("select count(*) from checkpoints").fetchone()[0] > 5


def test_gateway_budget_outranks_the_agent(tmp_path, sandbox_image):
    # The agent is told it may take 6 steps; a tampered agent could ignore that, the gateway cannot be.
    with scripted_gateway(tmp_path, NEVER_SUBMITS) as gateway:
        outcome = run_isolated(ADD_TASK, seed_agent_dir(), gateway, budget=EpisodeBudget(max_steps=3))
    assert outcome.stop_reason == "step_budget" and outcome.calls == 3


def test_tampered_agent_that_ignores_its_budget(tmp_path, sandbox_image):
    agent = tmp_path / "agent"
    shutil.copytree(seed_agent_dir(), agent)
    (agent / "graph.py").write_text(
        (agent / "graph.py").read_text().replace('state.get("steps", 0) >= config.max_steps', "False")
    )
    with scripted_gateway(tmp_path, NEVER_SUBMITS) as gateway:
        outcome = run_isolated(ADD_TASK, agent, gateway, budget=EpisodeBudget(max_steps=3))
    assert outcome.stop_reason == "step_budget" and outcome.calls == 3  # refused by the gateway at call 4
    assert "budget exceeded" in (outcome.error or "")


def test_crashing_agent_is_reported(tmp_path, sandbox_image):
    agent = tmp_path / "agent"
    shutil.copytree(seed_agent_dir(), agent)
    (agent / "run.py").write_text("raise SystemExit('mutated agent crashed on start')\n")
    with scripted_gateway(tmp_path, SOLVE_ADD) as gateway:
        outcome = run_isolated(ADD_TASK, agent, gateway)
    assert outcome.stop_reason == "agent_crash"
    assert "mutated agent crashed on start" in outcome.log_tail and outcome.calls == 0
