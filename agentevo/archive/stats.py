"""The archive's nodes with their scores: per node, its lineage and its per-task results (from the result rows).

What parent selection sees (``agentevo.evolve``) and which node is best (``archive:RUN:best`` in a comparison). A
plain-data view, so each policy's formula is unit-tested on a fixed archive without Docker or SQLite.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field

from agentevo.archive.archive import Archive
from agentevo.archive.node import Node
from agentevo.evaluate.results import ResultsStore

SAFETY_STAGE = "safety"  # the probe score (evolve/safety.py): a node's evaluation, not the task score


class NodeStats(BaseModel):
    """One node as selection sees it. ``tasks`` maps a task id to its mean score over scored attempts."""

    id: str
    parent: str | None = None
    order: int = Field(description="Creation order: 0 for the seed.")
    children: int = Field(
        0,
        description="Its children in the archive: admitted ones only, as DGM's code counts them (a parent whose "
        "mutations come back refused is not starved for it).",
    )
    admitted: bool = Field(
        True, description="It passed its gate (only admitted, scored nodes can be parents)."
    )
    evaluated: bool = Field(
        True, description="Its first stage is scored: before that, a few finished episodes say too little."
    )
    tasks: dict[str, float] = Field(default_factory=dict)

    @property
    def evals(self) -> int:
        return len(self.tasks)

    @property
    def successes(self) -> float:
        return sum(self.tasks.values())

    @property
    def score(self) -> float:
        """Mean score over every task evaluated so far (0 before any)."""
        return self.successes / self.evals if self.tasks else 0.0

    @property
    def selectable(self) -> bool:
        return self.admitted and self.evaluated and bool(self.tasks)

    def mean_on(self, tasks: set[str]) -> float:
        """Mean score over ``tasks`` (which it must have scored): how it compares with nodes that ran them too."""
        return sum(self.tasks[t] for t in tasks) / len(tasks) if tasks else self.score


def shared_tasks(nodes: list[NodeStats]) -> set[str]:
    """The tasks every one of ``nodes`` has scored: the like-with-like basis for comparing their means.

    Stages partition the suite in order, so this is at least the first stage's tasks once every node has
    finished it; a node evaluated further is not compared on tasks the others never met.
    """
    sets = [set(n.tasks) for n in nodes if n.tasks]
    return set.intersection(*sets) if sets else set()


def archived_children(nodes: list[Node]) -> dict[str, int]:
    """Each node's admitted children (DGM's ``children_count``: refused children never entered its archive)."""
    children: dict[str, int] = defaultdict(int)
    for node in nodes:
        if node.parent is not None and node.gate is not None and node.gate.passed:
            children[node.parent] += 1
    return children


def archive_stats(archive: Archive, store: ResultsStore, run_id: str) -> list[NodeStats]:
    """The view of the whole archive, in creation order, from the event log and the result rows."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in store.rows(run_id):
        if row.scored:
            scores[row.agent_id][row.task_id].append(row.score)
    nodes = archive.nodes()
    children = archived_children(nodes)
    return [
        NodeStats(
            id=node.id,
            parent=node.parent,
            order=order,
            children=children[node.id],
            admitted=node.gate is not None and node.gate.passed,
            evaluated=bool(set(node.scores) - {SAFETY_STAGE}),
            tasks={task: sum(s) / len(s) for task, s in scores[node.id].items()},
        )
        for order, node in enumerate(nodes)
    ]


def best_of(stats: list[NodeStats]) -> NodeStats | None:
    """The archive's best node: the highest mean score of the selectable nodes (ties: more tasks, then older)."""
    return max((s for s in stats if s.selectable), key=lambda s: (s.score, s.evals, -s.order), default=None)
