"""The ``ray`` executor against the ``local`` one on the same scripted run (control flow, scripted model, real
Docker and a real local Ray with two worker processes): the same archive either way. Under Ray the episodes of
an evaluation fan out as Ray tasks, two at a time, each writing its result row into the run's one SQLite file
and its calls into its one call log, while this process alone writes the archive's events. Memory is on (real
Chroma): Ray workers read lessons from the run's memory service, and each node's record says which it read.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from agentevo.archive import Archive
from agentevo.config.evolve import ExecutorName, SafetyMode
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.budget import StopCause
from agentevo.evolve.start import evolve_run, open_run
from agentevo.memory import MemoryConfig
from agentevo.memory.episodes import run_memory
from tests.evolve import scripted
from tests.memory.conftest import lesson


@pytest.fixture
def archives(tmp_path, sandbox_image) -> Path:
    return tmp_path / "archives"


def _evolve(archives: Path, executor: ExecutorName) -> tuple[list[tuple], float]:
    folder = archives / executor.value
    config, evolve = scripted.settings(  # no contract check: examples/ray_evolve.py's test runs it under Ray
        folder,
        max_nodes=3,
        workers=2,
        executor=executor,
        safety=SafetyMode.record,
        probe_steps=2,
        contract_check=False,
    )
    memory = MemoryConfig(enabled=True, path=folder / "memory", distil=False)
    config = config.model_copy(update={"memory": memory})
    with run_memory(memory, folder / "memory", run_id="setup") as library:  # one lesson for tasks t0 and t1
        library.library.add(lesson(scripted.tasks()[0].instructions, "return the constant", source="earlier"))
    run, evolve = open_run(config, evolve, seed=scripted.weakened_seed(folder / "seed"))
    started = time.monotonic()
    status = evolve_run(
        config, evolve, run, backend=scripted.backend(), mutator_backend=scripted.backend(),
        operator=scripted.ScriptedOperator([scripted.fix, scripted.no_change]), tasks=scripted.tasks(),
        backend_source=scripted.backend_source,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert status.cause is StopCause.nodes and status.error is None, status
    with Archive.open(run.path) as archive, ResultsStore(run.path / "results.sqlite") as store:
        rows = store.rows(run.run_id)
        assert len({(r.agent_id, r.task_id, r.attempt) for r in rows}) == len(rows)  # no row twice
        admitted = [n.id for n in archive.nodes() if n.gate.passed]
        assert Counter(r.agent_id for r in rows) == dict.fromkeys(admitted, 3)
        probes = Counter(r.agent_id for r in store.rows(f"{run.run_id}/safety"))
        assert probes == dict.fromkeys(admitted, 4)  # the three harm probes and the canary
        # Every episode's calls are in the one call log, whole lines (written by several processes).
        calls = [json.loads(line) for line in (run.path / "llm_calls.jsonl").read_text().splitlines()]
        fixed = next(n.id for n in archive.nodes() if n.change == "fix")
        assert {c["task_id"] for c in calls if c["agent_id"] == fixed} >= {t.id for t in scripted.tasks()}
        # Concurrent expansions may commit in either order: compare nodes by what they are, not their ids.
        nodes = sorted(
            (n.change, n.parent, n.gate.passed, n.gate.failure, n.gate.reason,
             {stage: (s.tasks, s.tasks_passed, s.score) for stage, s in n.scores.items()},
             len(n.lessons.used) if n.lessons else None)
            for n in archive.nodes()
        )  # fmt: skip
    return nodes, seconds


@pytest.mark.timeout(1200)
def test_ray_and_local_executors_build_the_same_archive(archives):
    local, local_s = _evolve(archives, ExecutorName.local)
    ray, ray_s = _evolve(archives, ExecutorName.ray)
    assert ray == local
    changes = {
        change: (passed, failure, scores, read) for change, _, passed, failure, _, scores, read in local
    }
    assert changes["fix"][0] and changes["fix"][2]["small"][1] == 2  # the fix admitted, 2 of 3 tasks
    # The seed's episodes read the lesson (recorded on it under either executor); failing with it twice, the lesson
    # is quarantined by the guard (repeated harm), so the fix read none.
    assert changes["the seed agent"][3] == 1 and changes["fix"][3] == 0
    assert changes["no_change"][1] == "empty_diff"
    print(f"\nlocal {local_s:.1f} s, ray {ray_s:.1f} s (Ray start included)")
