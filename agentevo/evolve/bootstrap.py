"""``bootstrap`` (DSPy's BootstrapFewShot): solutions from the run's passed train episodes, verified again by the
evaluator, become the child's worked examples (``Genome.demos``).

The candidates are the code in the replies of every episode the results mark as passed (any node's: the archive's
trajectories are the teacher's traces), one answer per task; each is judged alone by the hidden tests in a fresh
sandbox, and only those that pass are used. The child's demos are a seeded draw of one to three of them, from
distinct tasks, unlike its parent's (DSPy's random search over bootstrapped demo sets). The agent never shows a
demo on its own task, so a demo cannot leak its task's answer into a score.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any, Protocol

from agentevo.agents.seed.genome import DEMO_CHARS, Demo
from agentevo.agents.seed.prompting import code_of
from agentevo.archive import Archive, Node
from agentevo.config.evolve import OperatorName
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.genome_operators import Known, describe, read_genome, seeded
from agentevo.evolve.operators import MutationFailed, Parent, Proposal
from agentevo.gateway.recorder import CallRecord
from agentevo.runs import CALLS_FILE, RESULTS_DB, RunDir
from agentevo.tasks import Task

MAX_DEMOS = 3
VERIFY_PER_EXPANSION = 6  # evaluator runs one expansion may spend on new candidates


class Judge(Protocol):
    def evaluate_solution(self, task: Task, solution_source: str) -> Any: ...


class Bootstrap:
    """Worked examples from verified train trajectories."""

    name = OperatorName.bootstrap.value

    def __init__(
        self, archive: Archive, seed: int, run: RunDir, tasks: dict[str, Task], judge: Judge
    ) -> None:
        """``tasks``: the split evolution scores on (only their episodes are used); ``judge``: the evaluator."""
        self.archive, self.seed, self.run, self.tasks, self.judge = archive, seed, run, tasks, judge
        self.known = Known(archive)
        self.verdicts: dict[tuple[str, str], bool] = {}  # (task, code) -> passed its hidden tests
        self.lock = threading.Lock()

    def ready(self, parent: Node) -> str | None:
        return None if self._passed() else "bootstrap needs a passed train episode in the run"

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        genome = read_genome(parent.folder, parent.id)
        rng, label = seeded(self.seed, self.name, parent.id, self.archive)
        pool = self._verified(rng)
        mine = {d.task_id for d in genome.demos}
        for _ in range(20):
            drawn = rng.sample(pool, k=min(len(pool), rng.randint(1, MAX_DEMOS)))
            child = genome.model_copy(update={"demos": drawn})
            if {d.task_id for d in drawn} != mine and (folder := self.known.new(parent, workdir, child)):
                return Proposal(
                    folder=folder, change=f"bootstrap ({label}): {'; '.join(describe(genome, child))}"
                )
        raise MutationFailed(
            f"bootstrap has {len(pool)} verified demo(s), none of them new for {parent.id} ({label}); "
            "more passed train episodes make more"
        )

    def _verified(self, rng: random.Random) -> list[Demo]:
        """Demos whose solution passed its task's hidden tests, one per task (new candidates judged here)."""
        candidates = self._candidates()
        rng.shuffle(candidates)
        demos: dict[str, Demo] = {}
        budget = VERIFY_PER_EXPANSION
        for task_id, code in candidates:
            if task_id in demos:
                continue
            with self.lock:
                known = self.verdicts.get((task_id, code))
            if known is None and budget > 0:
                budget -= 1
                known = bool(self.judge.evaluate_solution(self.tasks[task_id], code).passed)
                with self.lock:
                    self.verdicts[(task_id, code)] = known
            if known:
                demos[task_id] = Demo(task_id=task_id, task=self.tasks[task_id].instructions, solution=code)
        if not demos:
            raise MutationFailed(f"bootstrap verified no demo among {len(candidates)} candidate answer(s)")
        return sorted(demos.values(), key=lambda d: d.task_id)

    def _passed(self) -> set[tuple[str, str]]:
        """(node, task) of the run's passed episodes on the scored split."""
        with ResultsStore(self.run.path / RESULTS_DB) as store:
            rows = store.rows(self.run.run_id)
        return {(r.agent_id, r.task_id) for r in rows if r.passed and r.task_id in self.tasks}

    def _candidates(self) -> list[tuple[str, str]]:
        """(task, code) of every distinct answer in the replies of passed episodes, in the order recorded."""
        passed = self._passed()
        found: dict[tuple[str, str], None] = {}
        for record in _records(self.run.path):
            if (record.agent_id, record.task_id) not in passed or record.status != 200:
                continue
            task = self.tasks[record.task_id or ""]
            for text in _reply_texts(record):
                code = code_of(text, task.entry_point or "")
                if code and len(code) <= DEMO_CHARS and f"def {task.entry_point}(" in code:
                    found[(task.id, code)] = None
        return list(found)


def _records(run_dir: Path) -> list[CallRecord]:
    """The run's recorded calls (a torn last line of a killed run is skipped)."""
    path = run_dir / CALLS_FILE
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            records.append(CallRecord.model_validate_json(line))
        except ValueError:
            continue
    return records


def _reply_texts(record: CallRecord) -> list[str]:
    """The reply's text and the file contents its tool calls wrote (``create``)."""
    message = ((record.response or {}).get("choices") or [{}])[0].get("message") or {}
    texts = [message.get("content") or ""]
    for call in message.get("tool_calls") or []:
        try:
            args = json.loads(call["function"]["arguments"])
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(args, dict) and isinstance(args.get("content"), str):
            texts.append(f"```python\n{args['content']}\n```")
    return texts
