"""Memory and weights inside the loop, driven by the scripted model (control flow, not model quality).

The scripted reply is both a solution (a code block the fixed seed saves) and a reflection (a JSON object of
lessons after it), so every node's episodes are distilled into real lessons in a real Chroma library, verified by
re-running each node's own agent in Docker. The training round is a stand-in object (control flow: LoRA training
and promotion themselves are tested in tests/train and tests/llm).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentevo.archive import Archive
from agentevo.evolve.start import evolve_run, open_run
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.memory import MemoryConfig
from agentevo.memory.episodes import run_memory
from agentevo.train.registry import Decision
from tests.evolve import scripted
from tests.memory.conftest import lesson

ADVICE = {"trigger": "a function that returns a constant", "lesson": "return the very number the task names"}
REPLY = scripted.ANSWER + "\n" + json.dumps({"lessons": [{**ADVICE, "example": "", "tags": []}]})


class LessonFollower(ScriptedChatModel):
    """The scripted reply, except that with ADVICE's lesson in its prompt it returns the number the task names
    (without it, always 42): so the lesson wins its paired re-run on t2 and ties on t0 and t1."""

    def _generate(self, messages: list, stop: Any = None, run_manager: Any = None, **kwargs: Any):
        result = super()._generate(messages, stop, run_manager, **kwargs)
        prompt = "\n".join(str(m.content) for m in messages)
        named = re.search(r"returning (\d+)", prompt)
        if ADVICE["lesson"] in prompt and named:
            message = result.generations[0].message
            message.content = str(message.content).replace("return 42", f"return {named.group(1)}")
        return result


def distil_calls(run_dir: Path) -> int:
    calls = [json.loads(line) for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    return sum(c["task_id"] == "memory/distil" for c in calls)


@pytest.mark.timeout(900)
def test_each_node_records_the_lessons_it_read_and_taught_and_a_resume_repeats_none(tmp_path, sandbox_image):
    archives = tmp_path / "archives"
    config, evolve = scripted.settings(archives, contract_check=False)
    config = config.model_copy(update={"memory": MemoryConfig(enabled=True, path=tmp_path / "memory")})
    earlier = lesson(scripted.tasks()[0].instructions, "read the task twice", source="earlier run")
    with run_memory(config.memory, tmp_path / "memory", run_id="setup") as memory:
        memory.library.add(earlier)
    run, evolve = open_run(
        config, evolve, seed=scripted.weakened_seed(tmp_path / "seed"), budgets={"max_nodes": 2}
    )
    backend = ChatModelBackend(LessonFollower(replies=[REPLY]), "scripted")

    def evolve_once():
        return evolve_run(
            config, evolve, run, backend=backend, mutator_backend=backend,
            operator=scripted.ScriptedOperator([scripted.fix]), tasks=scripted.tasks(),
        )  # fmt: skip

    status = evolve_once()
    assert status.error is None and status.jobs_done["learn"] == 2
    with Archive(run.path) as archive:
        seed, child = archive.nodes()
    # The weakened seed fails every task, and re-running it with the lesson does not help: nothing written.
    assert seed.lessons.written == [] and earlier.id in seed.lessons.used
    # The fixed child passes t0 and t1 (re-runs with the lesson tie) and fails t2, where the lesson wins its paired
    # re-run: so it is written (once: merged).
    assert child.scores["small"].tasks_passed == 2 and len(child.lessons.written) == 1
    assert {s.model for n in (seed, child) for s in n.scores.values()} == {"scripted"}
    with run_memory(config.memory, tmp_path / "memory", run_id="check") as memory:
        taught = memory.library.get(child.lessons.written[0])[0]
        assert taught.lesson == ADVICE["lesson"] and taught.verified
        assert taught.counters.wins > taught.counters.losses  # credited by its paired re-runs
        assert {p.node_id for p in taught.provenance} == {child.id}
    reflections = distil_calls(run.path)
    assert reflections == 6  # one per scored episode: 3 tasks x 2 nodes

    status = evolve_once()  # a resume: both nodes' lessons are on record, so nothing is distilled again
    assert status.jobs_done["learn"] == 0 and distil_calls(run.path) == reflections


class StandInTraining:
    """Due every 2 admitted nodes; a round "promotes" by serving a new name, and records what ran beside it."""

    def __init__(self, backend: ChatModelBackend, evolution: list) -> None:
        self.backend, self.evolution, self.next_at, self.rounds = backend, evolution, 2, []

    def due(self, admitted: int) -> bool:
        return admitted >= self.next_at

    def on_admitted(self, admitted: int, run_dirs: list[Path]) -> Decision:
        self.next_at = admitted + 2
        self.rounds.append((admitted, [str(job) for job in self.evolution[0].in_flight.values()]))
        self.backend.model = f"agent-v{len(self.rounds)}"
        return Decision(action="promote", candidate=self.backend.model, previous=None, active=self.backend.model,
                        reason="stand-in")  # fmt: skip


@pytest.mark.timeout(900)
def test_a_training_round_runs_alone_and_later_scores_name_the_promoted_model(
    tmp_path, sandbox_image, monkeypatch
):
    from agentevo.evolve import loop, start

    archives = tmp_path / "archives"
    config, evolve = scripted.settings(archives, contract_check=False, workers=2)
    run, evolve = open_run(
        config, evolve, seed=scripted.weakened_seed(tmp_path / "seed"), budgets={"max_nodes": 3}
    )
    backend = scripted.backend()
    evolution: list = []
    training = StandInTraining(backend, evolution)
    monkeypatch.setattr(start, "_training", lambda *args: training)
    created = loop.Evolution.__init__

    def keep(self, *args, **kwargs):
        created(self, *args, **kwargs)
        evolution.append(self)

    monkeypatch.setattr(loop.Evolution, "__init__", keep)
    notes: list[str] = []
    status = evolve_run(
        config, evolve, run, backend=backend, mutator_backend=scripted.backend(), tasks=scripted.tasks(),
        operator=scripted.ScriptedOperator([scripted.fix, scripted.comment]), on_note=notes.append,
    )  # fmt: skip
    assert status.error is None and status.nodes == 3
    # One round, at 2 admitted nodes (3 when n2's gate was already running: the round waits for it), alone.
    ((admitted, beside),) = training.rounds
    assert admitted in (2, 3) and beside == ["train"]
    assert any(f"self-training at {admitted} admitted nodes: promote: stand-in" in n for n in notes)
    with Archive(run.path) as archive:
        models = {n.id: n.scores["small"].model for n in archive.nodes()}
    # n0 was scored before the round; n1 and n2 were admitted when it became due, so scored after it.
    assert models == {"n0": "scripted", "n1": "agent-v1", "n2": "agent-v1"}
