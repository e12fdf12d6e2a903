"""What the archive records: nodes (agent variants) and the events that create and score them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    return datetime.now(UTC)


class Gate(BaseModel):
    """Whether a variant was admitted to be scored (imports, conforms, passes its smoke episode), and why."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    reason: str = ""
    failure: str | None = Field(None, description="The refusing gate's kind (evolution's GateFailure value).")


class StageScore(BaseModel):
    """A variant's score on one evaluation stage (e.g. ``smoke``, ``validation``, ``test``)."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0.0, le=1.0, description="Mean score over the stage's tasks.")
    tasks: int = Field(ge=0, description="Tasks evaluated (infrastructure failures excluded).")
    tasks_passed: int = Field(0, ge=0)
    tokens: int = Field(0, ge=0)
    seconds: float = Field(0.0, ge=0.0)
    model: str | None = Field(
        None,
        description="The model name that served the stage's episodes (an adapter's name when one was active).",
    )


class Lessons(BaseModel):
    """What a node's episodes read from the run's experience memory, and what was learned from them."""

    model_config = ConfigDict(extra="forbid")

    used: list[str] = Field(default_factory=list, description="Ids of the lessons its episodes read.")
    written: list[str] = Field(
        default_factory=list,
        description="Ids of the lessons distilled from its episodes that passed verification.",
    )


class Node(BaseModel):
    """One agent variant: a commit of the whole agent package, and what is known about it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    parent: str | None = None
    generation: int = Field(0, ge=0)
    commit: str = Field(description="The git commit holding the agent package.")
    operator: str = Field("seed", description="What made it: seed, self, meta, reflect, manual, ...")
    change: str = Field("", description="The change the operator was asked to make (the diagnosis).")
    mutator: str | None = Field(None, description="The backbone that made it, when several took turns.")
    diff_lines: int = Field(0, ge=0, description="Lines added plus removed against the parent.")
    gate: Gate | None = None
    scores: dict[str, StageScore] = Field(default_factory=dict)
    lessons: Lessons | None = Field(None, description="Set once the node's episodes were distilled (memory).")
    created: datetime = Field(default_factory=utc_now)
    updated: datetime = Field(default_factory=utc_now)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.scores.values())

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.scores.values())


class EventKind(str, Enum):
    """What happened to the archive; the event log of these is the source of truth."""

    node_added = "node_added"
    gate_decided = "gate_decided"
    node_scored = "node_scored"
    lessons_recorded = "lessons_recorded"


class Event(BaseModel):
    """One append-only event: ``seq`` orders them, ``data`` is the kind's fields."""

    model_config = ConfigDict(extra="forbid")

    seq: int = 0
    kind: EventKind
    node: str
    data: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utc_now)


def apply(nodes: dict[str, Node], event: Event) -> None:
    """Fold one event into the node records (the only place node records change)."""
    if event.kind is EventKind.node_added:
        nodes[event.node] = Node(id=event.node, created=event.at, updated=event.at, **event.data)
        return
    node = nodes.get(event.node)
    if node is None:
        raise ValueError(
            f"event {event.seq} ({event.kind.value}) names node {event.node!r}, which was never added"
        )
    if event.kind is EventKind.gate_decided:
        node.gate = Gate(**event.data)
    elif event.kind is EventKind.lessons_recorded:
        node.lessons = Lessons(**event.data)
    else:
        stage = event.data["stage"]
        node.scores[stage] = StageScore(**{k: v for k, v in event.data.items() if k != "stage"})
    node.updated = event.at
