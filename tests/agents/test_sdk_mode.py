"""SDK mode: the graph runs here, its tools act in a sandbox. A scripted chat model drives it
through known tool sequences (these tests are about control flow, not a model's skill)."""

from __future__ import annotations

import sqlite3

from langgraph.checkpoint.sqlite import SqliteSaver

from agentevo.agents import run_sdk
from agentevo.agents.sdk import SandboxWorkspace
from agentevo.agents.seed import AgentConfig, build_agent, initial_state, run_config
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.sandbox import Sandbox
from tests.agents.scripts import ADD_TASK, NEVER_SUBMITS, SOLVE_ADD, call


def test_scripted_run_writes_tests_and_submits(sandbox_image):
    with Sandbox.start() as sb:
        outcome = run_sdk(ADD_TASK, ScriptedChatModel(replies=SOLVE_ADD), sb)
        assert sb.exec("python -c 'from solution import add; print(add(20, 22))'").output.strip() == "42"
    assert outcome.stop_reason == "submitted" and outcome.steps == 4 and outcome.tokens > 0
    assert outcome.workspace_tar  # handed to the evaluator


def test_step_budget_stops_an_agent_that_never_submits(sandbox_image):
    with Sandbox.start() as sb:
        outcome = run_sdk(
            ADD_TASK, ScriptedChatModel(replies=NEVER_SUBMITS), sb, agent_config=AgentConfig(max_steps=3)
        )
    assert outcome.stop_reason == "step_budget" and outcome.steps == 3


def test_token_budget(sandbox_image):
    with Sandbox.start() as sb:
        outcome = run_sdk(
            ADD_TASK, ScriptedChatModel(replies=NEVER_SUBMITS), sb, agent_config=AgentConfig(max_tokens=30)
        )
    assert outcome.stop_reason == "token_budget" and outcome.tokens >= 30


def test_unknown_tool_and_bad_args_are_observations_not_crashes(sandbox_image):
    replies = [
        call("teleport", 1),
        call("str_replace", 2, path="missing.py", old="a", new="b"),
        call("submit", 3),
    ]
    with Sandbox.start() as sb:
        graph = build_agent(ScriptedChatModel(replies=replies), SandboxWorkspace(sb))
        state = graph.invoke(initial_state(ADD_TASK.public_view()), run_config(AgentConfig(), "t"))
    observations = [m.content for m in state["messages"] if m.type == "tool"]
    assert observations[0].startswith("error: unknown tool 'teleport'")
    assert observations[1].startswith("error: cannot read missing.py")
    assert state["stop_reason"] == "submitted"


def test_checkpoint_streaming_and_resume(sandbox_image, tmp_path):
    saver = SqliteSaver(sqlite3.connect(tmp_path / "ckpt.sqlite", check_same_thread=False))
    with Sandbox.start() as sb:
        graph = build_agent(ScriptedChatModel(replies=SOLVE_ADD), SandboxWorkspace(sb), checkpointer=saver)
        config = run_config(AgentConfig(), "episode-1")
        nodes = []
        for update in graph.stream(
            initial_state(ADD_TASK.public_view()), config, stream_mode="updates", interrupt_before=["act"]
        ):
            nodes.extend(update)
        assert nodes[0] == "think"  # stopped before running the first tool call
        paused = graph.get_state(config)
        assert paused.next == ("act",) and paused.values["steps"] == 1
        for update in graph.stream(None, config, stream_mode="updates"):  # resume from the checkpoint
            nodes.extend(update)
    final = graph.get_state(config).values
    assert final["stop_reason"] == "submitted"
    assert nodes.count("think") == 4 and nodes.count("act") == 4
    assert len(list(saver.list(config))) > 5  # every superstep is inspectable


def test_a_bare_code_block_is_saved_as_the_solution(sandbox_image):
    replies = ["Here it is:\n```python\ndef add(a, b):\n    return a + b\n```", call("submit", 2)]
    with Sandbox.start() as sb:
        outcome = run_sdk(ADD_TASK, ScriptedChatModel(replies=replies), sb)
        assert sb.read_file("/workspace/solution.py").decode() == "def add(a, b):\n    return a + b\n"
    assert outcome.stop_reason == "submitted" and outcome.steps == 2
