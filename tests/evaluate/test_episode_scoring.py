"""Hostile agent behaviour, end to end: an isolated episode (scripted model behind the gateway),
then the evaluator. Each is scored by the hidden tests and reported with its error kind."""

from __future__ import annotations

import shutil

import pytest

from agentevo.agents import run_isolated, seed_agent_dir
from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.evaluate import ErrorKind, Evaluator, ResultsStore
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.orchestrate import run_suite, score_episode
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks import load_suite
from tests.agents.scripts import ADD_TASK, NEVER_SUBMITS, SOLVE_ADD, WRONG_ADD, call, loop_seed

RIGHT = "def add(a, b):\n    return a + b\n"
FAKE_PASS = (
    "import sys\nprint('PASS'); print('AGENTEVO-RESULT 0 {\"passed\": 3}')\ndef add(a, b):\n    return 0\n"
)

CASES = {
    "solves": (SOLVE_ADD, {}, True, None),
    "wrong": (WRONG_ADD, {}, False, ErrorKind.tests_failed),
    "deletes_workspace": (
        [
            call("create", 1, path="solution.py", content=RIGHT),
            call("bash", 2, command="rm -rf /workspace/* /workspace/.[!.]*"),
            call("submit", 3),
        ],
        {},
        False,
        ErrorKind.no_solution,
    ),
    "edits_copied_tests": (
        [
            call("create", 1, path="solution.py", content="def add(a, b):\n    return a * b\n"),
            call("create", 2, path="test_hidden.py", content="def test_all():\n    assert True\n"),
            call("create", 3, path="conftest.py", content="import sys; sys.exit(0)\n"),
            call("submit", 4),
        ],
        {},
        False,
        ErrorKind.tests_failed,
    ),
    "prints_fake_pass": (
        [
            call("create", 1, path="solution.py", content=FAKE_PASS),
            call("bash", 2, command="echo PASS; echo 'all tests passed'"),
            call("submit", 3),
        ],
        {},
        False,
        ErrorKind.tests_failed,
    ),
    "never_submits": (NEVER_SUBMITS, {"max_steps": 3}, False, ErrorKind.step_budget),
    "token_budget": (NEVER_SUBMITS, {"max_tokens": 40}, False, ErrorKind.token_budget),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_agent_behaviour_is_scored_correctly(name, tmp_path, sandbox_image):
    replies, budget, passed, kind = CASES[name]
    with Gateway(
        ChatModelBackend(ScriptedChatModel(replies=replies), "scripted"), run_dir=tmp_path, run_id="h"
    ) as gateway:
        outcome = run_isolated(ADD_TASK, seed_agent_dir(), gateway, budget=EpisodeBudget(**budget))
    row = score_episode(ADD_TASK, outcome, Evaluator(), run_id="h", agent_id="seed", attempt=0)
    assert (row.passed, row.error_kind) == (passed, kind), outcome.log_tail
    assert row.tokens == outcome.tokens > 0


def test_agent_exiting_without_submit_is_no_submit(tmp_path, sandbox_image):
    agent = tmp_path / "agent"
    shutil.copytree(seed_agent_dir(), agent)
    line = 'AGENTEVO-AGENT {"v": 1, "episode": "quit-1", "stop_reason": "gave_up", "steps": 0, "tokens": 0}'
    (agent / "run.py").write_text(f"print({line!r})\n")
    with Gateway(
        ChatModelBackend(ScriptedChatModel(replies=SOLVE_ADD), "scripted"), run_dir=tmp_path, run_id="h"
    ) as gateway:
        outcome = run_isolated(ADD_TASK, agent, gateway, episode_id="quit-1")
    row = score_episode(ADD_TASK, outcome, Evaluator(), run_id="h", agent_id="quitter", attempt=0)
    assert row.error_kind == ErrorKind.no_submit and not row.passed


def test_run_suite_records_rows_and_pass_at_k(tmp_path, sandbox_image):
    """A scripted model answers every built-in task with the same code block: control flow, not skill.

    One episode at a time: the scripted replies are one shared cycle (code block, then submit), which
    parallel episodes would interleave. The seed on its tool loop (one-function tasks are otherwise answered
    directly, without a checkpoint)."""
    tasks = load_suite("builtin", limit=3)
    replies = ["```python\ndef add(a, b):\n    return a + b\n```", call("submit", 9)]
    config = AgentevoConfig(archives_dir=tmp_path)
    run = RunDir(tmp_path)
    seen = []
    backend = ChatModelBackend(ScriptedChatModel(replies=replies), "scripted")
    rows = run_suite(
        config,
        tasks,
        agent_dir=loop_seed(tmp_path / "agent"),
        run=run,
        attempts=2,
        parallel=1,
        on_result=seen.append,
        backend=backend,
    )
    assert len(rows) == len(seen) == 6
    store = ResultsStore(run.path / RESULTS_DB)
    by_task = {r.task_id: r for r in store.rows()}
    assert by_task["builtin/add"].passed and not by_task["builtin/answer"].passed
    assert store.pass_at_k(run.run_id, 1) == pytest.approx(1 / 3)
    assert (run.path / "llm_calls.jsonl").exists() and len(
        list((run.path / "checkpoints").glob("*.sqlite"))
    ) == 6
