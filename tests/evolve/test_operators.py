"""The LLM operators end to end with the scripted chat model (control flow, not model quality): ``reflect``
edits only a declared text surface; ``meta`` runs the seed as a coding agent in a sandbox whose workspace is
the parent's code. Both go through the mutating gateway, which records their calls; neither sees hidden tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from agentevo.archive import Archive
from agentevo.config.evolve import OperatorName
from agentevo.evolve.start import evolve_run, open_run
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from tests.evolve import scripted

NEW_PROMPT = "You are a terse Python programmer. Write the solution file first, then call submit."


@pytest.fixture
def archives(tmp_path, sandbox_image) -> Path:
    return tmp_path / "archives"


def _evolve(archives: Path, operator: OperatorName, mutator: ChatModelBackend) -> tuple[Path, Archive]:
    config, evolve = scripted.settings(archives, max_nodes=2, operator=operator, coder_steps=3)
    run, evolve = open_run(config, evolve, seed=scripted.weakened_seed(archives / "seed"))
    status = evolve_run(
        config, evolve, run, backend=scripted.backend(), mutator_backend=mutator, tasks=scripted.tasks()
    )
    assert status.nodes == 2 and status.error is None, status
    return run.path, Archive.open(run.path)


def _mutator_calls(run_dir: Path) -> list[dict]:
    lines = (run_dir / "llm_calls.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if str(r.get("task_id", "")).startswith("evolve/")]


def _hidden_tests_absent(calls: list[dict]) -> None:
    for task in scripted.tasks():
        for test in task.tests:
            assert all(test not in json.dumps(c["request"]) for c in calls)


def test_reflect_rewrites_only_declared_surfaces(archives):
    edits = [{"path": "prompts/system.md", "content": NEW_PROMPT}, {"path": "run.py", "content": "hacked"}]
    reply = json.dumps({"edits": edits})
    run_dir, archive = _evolve(
        archives, OperatorName.reflect, ChatModelBackend(ScriptedChatModel(replies=[reply]), "m")
    )
    with archive:
        child = archive.node("n1")
        assert child.operator == "reflect" and child.gate.passed and "small" in child.scores
        diff = archive.diff("n1")
        assert "prompts/system.md" in diff and "run.py" not in diff  # run.py is no surface: ignored
        assert NEW_PROMPT in diff
    calls = _mutator_calls(run_dir)
    assert [c["task_id"] for c in calls] == ["evolve/reflect"] and calls[0]["agent_id"] == "n0"
    _hidden_tests_absent(calls)


def test_meta_runs_a_coding_agent_on_the_parents_code(archives):
    replies = [
        "Make the system prompt tell the model to write the solution file before anything else.",  # diagnosis
        AIMessage(
            "",
            tool_calls=[
                {"id": "c1", "name": "create", "args": {"path": "prompts/system.md", "content": NEW_PROMPT}}
            ],
        ),
        AIMessage("", tool_calls=[{"id": "c2", "name": "submit", "args": {"summary": "done"}}]),
    ]
    mutator = ChatModelBackend(ScriptedChatModel(replies=replies), "m")
    run_dir, archive = _evolve(archives, OperatorName.meta, mutator)
    with archive:
        child = archive.node("n1")
        assert child.operator == "meta" and child.gate.passed, child.gate
        assert "write the solution file before anything else" in child.change
        assert NEW_PROMPT in archive.diff("n1")
    calls = _mutator_calls(run_dir)
    assert calls[0]["task_id"] == "evolve/diagnose"
    assert any(c["agent_id"] == "meta:n0" for c in calls[1:])
    _hidden_tests_absent(calls)
