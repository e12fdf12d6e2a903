"""Solved cases as worked examples: a passed episode's verified solution is kept, and a later episode of a similar
task sees it (in a retry after a first answer that fails the statement's example, or before every answer under
``cases_when: always``), never its own task's case; with ``memory.learn`` off nothing is written.

The backbone is a scripted chat model (control flow, not skill): it answers each ladder task with that task's
reference solution, and the test reads the prompts the sandboxed seed agent sent through the gateway.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentevo.agents import seed_agent_dir
from agentevo.agents.seed.genome import CaseUse, dump_genome, load_genome
from agentevo.config import AgentevoConfig
from agentevo.contract import GENOME_FILE
from agentevo.evolve.operators import copy_agent
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


def wrong(task: Task) -> str:
    return f"```python\ndef {task.entry_point}(*args):\n    return None\n```"


def always_shown(tmp_path: Path) -> Path:
    """A copy of the seed that shows its solved cases before every answer (``cases_when: always``)."""
    folder = copy_agent(seed_agent_dir(), tmp_path / "always")
    genome = load_genome(folder).model_copy(update={"cases_when": CaseUse.always})
    (folder / GENOME_FILE).write_text(dump_genome(genome))
    return folder


def test_a_similar_solved_case_is_shown_in_the_retry_and_never_for_its_own_task(tmp_path, sandbox_image):
    """The seed (``cases_when: retry``): a first answer that fails the statement's example brings one more call
    with the similar solved case, and the retry's answer, which passes, is kept; a first answer that passes is
    kept with no case shown; a task never sees its own case. Under ``always`` the case precedes the first answer."""
    one, two = ladder_tasks(1, 2)
    config = AgentevoConfig(
        archives_dir=tmp_path, memory=MemoryConfig(enabled=True, path=tmp_path / "memory")
    )
    replies = [answer(one), wrong(two), answer(two), wrong(one), answer(one), answer(two), answer(one)]
    backend = ChatModelBackend(ScriptedChatModel(replies=replies), "scripted")
    one_last, two_last = (t.canonical_solution.strip().splitlines()[-1] for t in (one, two))
    with run_memory(config.memory, tmp_path / "memory", run_id="learn") as memory:

        def episodes(tasks: list[Task], agent: Path | None = None) -> tuple[list[bool], list[str]]:
            run = RunDir(tmp_path)
            rows = run_suite(
                config,
                tasks,
                agent_dir=agent or seed_agent_dir(),
                run=run,
                parallel=1,
                memory=memory,
                backend=backend,
            )
            return [r.passed for r in rows], prompts(run)

        passed, (first, two_alone, two_retry) = episodes([one, two])
        assert passed == [True, True]  # the retry's answer is kept over the first, which failed the example
        assert one_last not in first and one_last not in two_alone
        assert one_last in two_retry and one.instructions.strip()[:60] in two_retry
        passed, (one_alone, one_retry, two_again) = episodes([one, two])
        assert passed == [True, True]
        assert two_last in one_retry and one_last not in one_alone + one_retry  # never its own case
        assert two_last not in two_again and one_last not in two_again  # passed alone: no case shown
        passed, (shown,) = episodes([one], always_shown(tmp_path))
        assert passed == [True] and two_last in shown
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
