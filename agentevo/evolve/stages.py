"""Staged evaluation: a node meets the next stage's tasks only when it scored enough on the stage before.

Stages partition the suite's tasks in order (the first ``stages[0].tasks``, then the next ``stages[1].tasks``,
...; a last stage without ``tasks`` takes all the rest: the full evaluation). A stage with ``top`` is reached
only by the ``top`` best nodes on the stage before (DGM defines such a full stage and never runs it; we do). A stage resumed after a crash runs only the tasks its node has no scored row for, so no finished
evaluation is repeated; rows are keyed by (run, node, task, attempt), so none is counted twice either.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentevo.agents.episode import EpisodeBudget
from agentevo.archive import Archive, Node, StageScore
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import Stage
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.executor import Offload
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks import Task


class NotEnoughTasks(ValueError):
    """The stages ask for more tasks than the split has."""


def partition(tasks: list[Task], stages: list[Stage]) -> list[list[Task]]:
    needed = sum(s.tasks or 1 for s in stages)
    if needed > len(tasks):
        raise NotEnoughTasks(
            f"the stages need {needed} tasks but the split has {len(tasks)}; lower evolve.stages[].tasks"
        )
    slices, start = [], 0
    for stage in stages:
        end = len(tasks) if stage.tasks is None else start + stage.tasks
        slices.append(tasks[start:end])
        start = end
    return slices


def ranked(nodes: list[Node], stage: str) -> list[str]:
    """Node ids by their score on ``stage``, best first (ties: the earlier node first)."""
    scored = [(i, n) for i, n in enumerate(nodes) if stage in n.scores]
    return [n.id for i, n in sorted(scored, key=lambda p: (-p[1].scores[stage].score, p[0]))]


def next_stage(node: Node, stages: list[Stage], nodes: list[Node] | None = None) -> int | None:
    """The index of the stage ``node`` is due for, or None when its evaluation is over (for now: a node out of
    a stage's ``top`` may enter it later, should better nodes drop out; none does, as scores are final)."""
    for index, stage in enumerate(stages):
        if stage.name in node.scores:
            continue
        if index == 0:
            return index
        before = stages[index - 1].name
        if node.scores[before].score < stage.threshold:
            return None
        if stage.top is not None and node.id not in ranked(nodes or [node], before)[: stage.top]:
            return None
        return index
    return None


def evaluate_stage(
    config: AgentevoConfig,
    archive: Archive,
    run: RunDir,
    node: Node,
    stage: Stage,
    tasks: list[Task],
    *,
    offload: Offload,
    budget: EpisodeBudget,
    parallel: int,
) -> Node:
    """Run the stage's tasks not yet scored for ``node``, then record its stage score from all its rows (and the
    model that served them)."""
    store = ResultsStore(run.path / RESULTS_DB)
    try:
        done = {r.task_id for r in store.rows(run.run_id, node.id) if r.scored}
        todo = [t for t in tasks if t.id not in done]
        if todo:
            with tempfile.TemporaryDirectory(dir=run.path) as tmp:
                folder = archive.export(node.id, Path(tmp) / node.id)
                offload.episodes(
                    config,
                    todo,
                    agent_dir=folder,
                    run=run,
                    agent_id=node.id,
                    budget=budget,
                    parallel=parallel,
                )
        ids = {t.id for t in tasks}
        rows = [r for r in store.rows(run.run_id, node.id) if r.task_id in ids]
    finally:
        store.close()
    scored = [r for r in rows if r.scored]
    score = StageScore(
        score=sum(r.score for r in scored) / len(scored) if scored else 0.0,
        tasks=len(scored),
        tasks_passed=sum(r.passed for r in scored),
        tokens=sum(r.tokens for r in rows),
        seconds=sum(r.seconds for r in rows),
        model=offload.model,
    )
    return archive.record_score(node.id, stage.name, score)
