"""A suite run with memory on: the seed agent, in its sandbox, reads lessons through the gateway socket with its
episode token and shows them in its prompt; the host counts each verdict on them and keeps the episode as a case.

The backbone is a scripted chat model (control flow, not skill): the test reads the prompt the agent sent.
"""

from __future__ import annotations

import json

from agentevo.agents import seed_agent_dir
from agentevo.config import AgentevoConfig
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.memory import MemoryConfig
from agentevo.memory.episodes import run_memory
from agentevo.orchestrate import run_suite
from agentevo.orchestrate.learning import distil_run
from agentevo.runs import RunDir
from agentevo.tasks import load_suite
from tests.agents.scripts import call
from tests.memory.conftest import lesson


def test_sandboxed_agent_reads_lessons_and_the_host_learns(tmp_path, sandbox_image):
    task = next(t for t in load_suite("builtin") if t.id == "builtin/add")
    tip = lesson(
        task.instructions, "write the function, run it once with bash, then submit", source="earlier"
    )
    config = AgentevoConfig(
        archives_dir=tmp_path, memory=MemoryConfig(enabled=True, path=tmp_path / "memory")
    )
    replies = ["```python\ndef add(a, b):\n    return a + b\n```", call("submit", 9)]
    run = RunDir(tmp_path)
    record = run.path / "lessons_used.json"
    with run_memory(config.memory, tmp_path / "memory", run_id=run.run_id, record=record) as memory:
        memory.library.add(tip)
        rows = run_suite(
            config, [task], agent_dir=seed_agent_dir(), run=run, parallel=1, memory=memory,
            backend=ChatModelBackend(ScriptedChatModel(replies=replies), "scripted"),
        )  # fmt: skip
        # On a saturated machine the episode may overrun its time limit: whatever the verdict, it is what counts.
        passed = rows[0].passed
        assert memory.used == {tip.id}
        assert json.loads(record.read_text()) == {"seed": [tip.id]}  # which lessons each agent (node) read
        counted = memory.library.get(tip.id)[0].counters
        assert (counted.retrieved, counted.helped, counted.hurt) == (1, int(passed), int(not passed))
        case = memory.library.similar_cases(task.instructions, 1)[0][0]
        assert (case.task_id, case.passed, case.lesson_ids) == (task.id, passed, [tip.id])
    first = json.loads((run.path / "llm_calls.jsonl").read_text().splitlines()[0])
    prompt = first["request"]["messages"][1]["content"]
    assert "Lessons from earlier tasks" in prompt and "run it once with bash" in prompt


def test_a_run_is_distilled_into_verified_lessons(tmp_path, sandbox_image):
    """After a failed episode: the reflection (scripted: a fixed JSON answer) proposes two lessons; the source task
    is re-run with each served to the agent and once without (the control, shared); the lesson whose re-run passes
    where the control fails is written with its win, the other (a tie) is dropped."""
    task = next(t for t in load_suite("builtin") if t.id == "builtin/add")
    solve = ["```python\ndef add(a, b):\n    return a + b\n```"]  # the seed answers this one-function task
    wrong = ["```python\ndef add(a, b):\n    return a - b\n```"]  # directly: one call an episode
    advice = [
        {"trigger": "a small arithmetic function", "lesson": "write it in solution.py, run it once, then submit"},
        {"trigger": "an arithmetic task", "lesson": "subtract instead of adding to be safe"},
    ]  # fmt: skip
    # Calls in order: the episode (1), the reflection (1), the re-run with lesson 1 (1), the control without a
    # lesson (1), the re-run with lesson 2 (1; the control is not run again).
    answer = {"lessons": [{**a, "example": "", "tags": []} for a in advice]}
    replies = [*wrong, json.dumps(answer), *solve, *wrong, *wrong]
    config = AgentevoConfig(
        archives_dir=tmp_path, memory=MemoryConfig(enabled=True, path=tmp_path / "memory")
    )
    backend = ChatModelBackend(ScriptedChatModel(replies=replies), "scripted")
    run = RunDir(tmp_path)
    with run_memory(config.memory, tmp_path / "memory", run_id=run.run_id) as memory:
        rows = run_suite(
            config, [task], agent_dir=seed_agent_dir(), run=run, parallel=1, memory=memory, backend=backend
        )
        assert not rows[0].passed
        (out,) = distil_run(config, memory, run, [task], agent_dir=seed_agent_dir(), backend=backend)
        assert [x.lesson for x in out.proposed] == [a["lesson"] for a in advice]
        assert [x.lesson for x in out.verified] == [advice[0]["lesson"]] and out.verified[0].verified
        assert out.reruns == 2 and out.harmful == []
        kept = memory.library.get(out.written[0].lesson_id)[0]
        assert (kept.counters.wins, kept.counters.losses) == (1, 0)
        assert kept.provenance[0].episode_id == "builtin-add-0" and kept.provenance[0].run_id == run.run_id
    calls = [json.loads(line) for line in (run.path / "llm_calls.jsonl").read_text().splitlines()]
    assert [c["task_id"] for c in calls] == [task.id, "memory/distil"]  # re-runs kept out of the run
