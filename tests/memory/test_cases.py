"""Solved cases as worked examples: a passed episode's verified solution is kept, and a later episode of a similar
task sees it before its own task, never its own task's case; with ``memory.learn`` off nothing is written.

The backbone is a scripted chat model (control flow, not skill): it answers each ladder task with that task's
reference solution, and the test reads the prompts the sandboxed seed agent sent through the gateway.
"""

from __future__ import annotations

import json

from agentevo.agents import seed_agent_dir
from agentevo.config import AgentevoConfig
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.memory import MemoryConfig
from agentevo.memory.episodes import run_memory
from agentevo.memory.models import CaseRecord, Provenance
from agentevo.orchestrate import run_suite
from agentevo.runs import RunDir
from agentevo.tasks import Task, load_suite

TEMPLATE = "ladder/add-constant-"


def ladder_tasks(*instances: int) -> list[Task]:
    by_id = {t.id: t for t in load_suite("ladder")}
    return [by_id[f"{TEMPLATE}{i}"] for i in instances]


def answer(task: Task) -> str:
    return f"```python\n{task.canonical_solution.strip()}\n```"


def case(task_id: str, task: str, solution: str, passed: bool = True) -> CaseRecord:
    provenance = Provenance(source="run-0", run_id="run-0", task_id=task_id)
    return CaseRecord(
        task_id=task_id,
        task=task,
        solution=solution,
        passed=passed,
        score=float(passed),
        provenance=provenance,
    )


def test_solved_cases_skip_the_own_task_failures_and_unlike_tasks(library):
    one, two, three = ladder_tasks(1, 2, 3)
    library.add_case(case(one.id, one.instructions, one.canonical_solution))
    library.add_case(case(two.id, two.instructions, two.canonical_solution, passed=False))
    library.add_case(case("other", "Parse an ISO date and return the weekday's name.", "def f(): ..."))
    found = library.solved_cases(three.instructions, 3, other_than=three.id)
    assert [c.task_id for c, _ in found] == [one.id]  # failed and unlike tasks are not worked examples
    assert library.solved_cases(one.instructions, 3, other_than=one.id) == []


def prompts(run: RunDir) -> list[str]:
    """Every request's messages as one text, in call order."""
    lines = (run.path / "llm_calls.jsonl").read_text().splitlines()
    return [json.dumps(json.loads(line)["request"]["messages"]) for line in lines]


def test_a_later_episode_sees_a_similar_solved_case_and_never_its_own(tmp_path, sandbox_image):
    one, two = ladder_tasks(1, 2)
    config = AgentevoConfig(
        archives_dir=tmp_path, memory=MemoryConfig(enabled=True, path=tmp_path / "memory")
    )
    backend = ChatModelBackend(ScriptedChatModel(replies=[answer(one), answer(two), answer(one)]), "scripted")
    with run_memory(config.memory, tmp_path / "memory", run_id="learn") as memory:
        run = RunDir(tmp_path)
        rows = run_suite(
            config,
            [one, two],
            agent_dir=seed_agent_dir(),
            run=run,
            parallel=1,
            memory=memory,
            backend=backend,
        )
        assert [r.passed for r in rows] == [True, True]
        first, second = prompts(run)
        marker = one.canonical_solution.strip().splitlines()[-1]
        assert marker not in first  # nothing solved yet
        assert (
            marker in second and one.instructions.strip()[:60] in second
        )  # task 1's case, as a worked example
        again = RunDir(tmp_path)
        run_suite(
            config, [one], agent_dir=seed_agent_dir(), run=again, parallel=1, memory=memory, backend=backend
        )
        (third,) = prompts(again)
        assert two.canonical_solution.strip().splitlines()[-1] in third
        assert third.count(marker) == 0  # its own task's solution is never shown to it
        assert len(memory.cases_served) == 2


def test_with_learning_off_the_library_is_only_read(tmp_path, sandbox_image):
    (one,) = ladder_tasks(1)
    memory_config = MemoryConfig(enabled=True, path=tmp_path / "memory", learn=False)
    config = AgentevoConfig(archives_dir=tmp_path, memory=memory_config)
    backend = ChatModelBackend(ScriptedChatModel(replies=[answer(one)]), "scripted")
    with run_memory(config.memory, tmp_path / "memory", run_id="frozen") as memory:
        rows = run_suite(
            config, [one], agent_dir=seed_agent_dir(), run=RunDir(tmp_path), parallel=1, memory=memory,
            backend=backend,
        )  # fmt: skip
        assert rows[0].passed and list(memory.library.records.all_cases()) == []
