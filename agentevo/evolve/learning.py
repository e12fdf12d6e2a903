"""What the loop learns besides code: lessons from each node's episodes (memory) and adapters (weights).

Two optional kinds of job, scheduled like the others and recorded so a resumed run neither repeats nor skips one:

* ``learn`` (``memory.enabled``): once a node's first stage is scored, its record gets the lessons its episodes
  read (``Node.lessons``) and, with ``memory.distil``, its scored episodes are reflected on; each proposed lesson
  is verified by re-running its task with that node's own agent, and the survivors join the run's one shared
  library, so later nodes are served what earlier ones learned. The node's ``lessons_recorded`` event marks it
  done.
* ``train`` (``train.interleave_every``): every N admitted nodes, with no other job running (training needs the
  cores the server and the sandboxes use), a LoRA round on the run's recorded calls, promoted only if it beats
  the active model on held-out tasks (:class:`~agentevo.train.interleave.SelfTraining`, whose count is kept in
  ``self_training.json``). Each stage score names the model that served it (``StageScore.model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agentevo.agents.episode import EpisodeBudget
from agentevo.archive import Archive, Node
from agentevo.config import AgentevoConfig
from agentevo.gateway import Backend
from agentevo.runs import RunDir
from agentevo.tasks import Task

if TYPE_CHECKING:
    from agentevo.memory.episodes import RunMemory
    from agentevo.train.interleave import SelfTraining


class LoopLearning:
    """The loop's memory and weight jobs; ``memory`` None: no ``learn`` jobs, ``training`` None: no ``train``."""

    def __init__(
        self,
        config: AgentevoConfig,
        run: RunDir,
        tasks: list[Task],
        *,
        backend: Backend,
        budget: EpisodeBudget,
        memory: RunMemory | None = None,
        training: SelfTraining | None = None,
    ) -> None:
        self.config, self.run, self.tasks, self.backend, self.budget = config, run, tasks, backend, budget
        self.memory, self.training = memory, training

    def learns(self, node: Node, first_stage: str) -> bool:
        """Whether ``node`` is due for its ``learn`` job."""
        return self.memory is not None and node.lessons is None and first_stage in node.scores

    def learn(self, archive: Archive, node: Node, workdir: Path) -> Node:
        """Distil ``node``'s episodes (``memory.distil``) and record what it read and taught on its record."""
        assert self.memory is not None, "learn jobs run only with memory on"
        written: list[str] = []
        if self.config.memory.distil:
            from agentevo.memory.library import AddAction
            from agentevo.orchestrate.learning import distil_run

            results = distil_run(
                self.config,
                self.memory,
                self.run,
                self.tasks,
                agent_dir=archive.export(node.id, workdir / node.id),
                backend=self.backend,
                agent_id=node.id,
                budget=self.budget,
            )
            written = [
                w.lesson_id for d in results for w in d.written if w.action is not AddAction.quarantined
            ]
        used = self.memory.used_by.get(node.id, set())
        return archive.record_lessons(node.id, sorted(used), sorted(set(written)))

    def trains(self, admitted: int) -> bool:
        """Whether a ``train`` round is due at ``admitted`` admitted nodes."""
        return self.training is not None and self.training.due(admitted)

    def train(self, admitted: int) -> str:
        """One interleaved round; what it decided, for the run's notes."""
        assert self.training is not None, "train jobs run only with train.interleave_every set"
        decision = self.training.on_admitted(admitted, [self.run.path])
        if decision is None:
            return f"self-training at {admitted} admitted nodes: nothing to train on yet"
        return f"self-training at {admitted} admitted nodes: {decision.action}: {decision.reason}"
