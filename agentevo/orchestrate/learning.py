"""Lessons from a finished run (``memory.distil``): each scored episode is reflected on by the backbone, each
proposed lesson is verified by paired re-runs of its source task (and of ``memory.verify_neighbours`` similar
tasks of the run) with the lesson served and without it, and only lessons that win are written (through the
library's consolidation and guard like any other write). The runs without a lesson are shared: one control per
task and attempt for the whole run.

The reflection goes through a gateway (recorded in the run's ``llm_calls.jsonl`` as ``memory/distil``); the
verification re-runs are ordinary isolated episodes scored by the evaluator, kept in a scratch folder.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.gateway import Backend, Gateway
from agentevo.gateway.client import HostLLM, HostLLMError
from agentevo.memory.distil import Control, Distilled, Rerun, learn
from agentevo.memory.embedding import embed
from agentevo.memory.episodes import PinnedLessons, RunMemory
from agentevo.memory.models import Lesson, Provenance
from agentevo.orchestrate.suite import run_suite
from agentevo.runs import RunDir
from agentevo.tasks import Task
from agentevo.train.trajectories import Episode, load_episodes


def transcript(episode: Episode) -> str:
    """The episode as a reflection reads it: its last call's conversation (system prompt left out) and reply."""
    last = episode.turns[-1]
    return "\n\n".join(f"[{m['role']}] {m['content']}" for m in [*last.prompt[1:], last.completion])


def distil_run(
    config: AgentevoConfig,
    memory: RunMemory,
    run: RunDir,
    tasks: list[Task],
    *,
    agent_dir: Path,
    backend: Backend,
    agent_id: str = "seed",
    budget: EpisodeBudget | None = None,
) -> list[Distilled]:
    """Reflect on every scored episode ``agent_id`` ran in ``run`` and write what survives verification (re-runs
    of ``agent_dir``, that agent's code); one result per episode reflected on (a reflection the model failed is skipped, as the run's other work is not undone)."""
    by_id = {task.id: task for task in tasks}
    episodes = [
        e
        for e in load_episodes(run.path)
        if e.agent_id == agent_id and e.task_id in by_id and e.passed is not None and e.turns
    ]
    rerun = partial(_rerun, config, agent_dir=agent_dir, backend=backend, budget=budget)
    controls: dict[tuple[str, int], bool | None] = {}

    def check(task: Task) -> tuple[Rerun, Control]:
        def control(i: int) -> bool | None:
            if (task.id, i) not in controls:
                controls[task.id, i] = rerun(task, None)
            return controls[task.id, i]

        return partial(rerun, task), control

    results = []
    with Gateway(backend, run_dir=run.path, run_id=run.run_id) as gateway:
        llm = HostLLM(gateway, scope="memory", timeout=config.llm.timeout)
        for episode in episodes:
            task = by_id[episode.task_id]
            provenance = Provenance(
                source=run.run_id,
                run_id=run.run_id,
                node_id=agent_id,
                task_id=task.id,
                episode_id=episode.episode_id,
            )
            try:
                results.append(
                    learn(
                        memory.library,
                        partial(llm.ask_structured, agent_id=agent_id, purpose="distil"),
                        task=task.instructions,
                        trajectory=transcript(episode),
                        passed=bool(episode.passed),
                        provenance=provenance,
                        checks=[
                            check(t)
                            for t in [task, *neighbours(task, tasks, config.memory.verify_neighbours)]
                        ],
                    )
                )
            except HostLLMError:
                continue
    return results


def neighbours(task: Task, tasks: list[Task], n: int) -> list[Task]:
    """The ``n`` tasks of ``tasks`` whose statements are most like ``task``'s (never ``task`` itself)."""
    others = [t for t in tasks if t.id != task.id]
    if n == 0 or not others:
        return []
    vectors = embed([task.instructions, *(t.instructions for t in others)])
    order = (vectors[1:] @ vectors[0]).argsort()[::-1]
    return [others[i] for i in order[:n]]


def _rerun(
    config: AgentevoConfig,
    task: Task,
    lesson: Lesson | None,
    *,
    agent_dir: Path,
    backend: Backend,
    budget: EpisodeBudget | None,
) -> bool | None:
    """Whether ``task`` passes with ``lesson`` served to the agent, or with none (the control); None when the
    infrastructure spoiled it."""
    with tempfile.TemporaryDirectory(prefix="agentevo-verify-") as scratch:
        rows = run_suite(
            config,
            [task],
            agent_dir=agent_dir,
            run=RunDir(Path(scratch)),
            backend=backend,
            budget=budget,
            parallel=1,
            memory=PinnedLessons([lesson] if lesson else []),
        )
    return rows[0].passed if rows and rows[0].scored else None
