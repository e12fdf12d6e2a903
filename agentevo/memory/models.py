"""What the memory keeps: lessons (abstract, conditioned advice) and cases (past episodes), with provenance."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TRIGGER_CHARS = 600  # the embedded text: all-MiniLM-L6-v2 reads 256 word pieces, no more
MAX_TEXT_CHARS = 2000
MAX_TAGS = 16


class LessonStatus(str, Enum):
    """Only active lessons are retrieved; the others are kept for lineage and export."""

    active = "active"
    superseded = "superseded"  # a newer lesson for the same situation replaced it (``superseded_by``)
    quarantined = "quarantined"  # the guard found it conflicting or harmful (``quarantine_reason``)


class Provenance(BaseModel):
    """Where a lesson came from: the run, evolution node, task and episode whose trajectory it was drawn from."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        ...,
        min_length=1,
        max_length=200,
        description="Who wrote it (a run id by default): what purge matches.",
    )
    run_id: str | None = None
    node_id: str | None = None
    task_id: str | None = None
    episode_id: str | None = None
    created_at: float = Field(default_factory=time.time)


class Counters(BaseModel):
    """Outcomes of the episodes that retrieved the lesson, and of its paired re-runs against a control."""

    model_config = ConfigDict(extra="forbid")

    retrieved: int = Field(0, ge=0)
    helped: int = Field(0, ge=0, description="Episodes that read it and passed (confounded with difficulty).")
    hurt: int = Field(0, ge=0, description="Episodes that read it and failed (confounded with difficulty).")
    wins: int = Field(0, ge=0, description="Paired re-runs passed with it that failed without it.")
    losses: int = Field(0, ge=0, description="Paired re-runs failed with it that passed without it.")

    @property
    def usefulness(self) -> float:
        """Laplace estimate of P(helps): from the paired re-runs when there are any (they compare like with like),
        else from the outcomes of the episodes that read it; 0.5 for a lesson never tried."""
        if self.wins + self.losses:
            return (self.wins + 1) / (self.wins + self.losses + 2)
        return (self.helped + 1) / (self.helped + self.hurt + 2)


def _text(value: str, field: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"{field} is {len(value)} characters; a lesson's {field} may have at most {limit}")
    return value


class Lesson(BaseModel):
    """One piece of advice and the situation it applies in. The trigger is what retrieval matches (embedded)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    trigger: str = Field(
        ..., min_length=3, description="The situation or condition in which the lesson applies."
    )
    lesson: str = Field(..., min_length=3, description="The advice itself.")
    example: str = Field("", description="A short example of applying it (or of the mistake it prevents).")
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    provenance: list[Provenance] = Field(..., min_length=1)
    counters: Counters = Field(default_factory=Counters)
    status: LessonStatus = LessonStatus.active
    version: int = Field(1, ge=1)
    verified: bool = Field(False, description="Re-running its source task with it helped (or did not hurt).")
    superseded_by: str | None = None
    quarantine_reason: str | None = None
    updated_at: float = Field(default_factory=time.time)

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        return _text(value, "trigger", MAX_TRIGGER_CHARS)

    @field_validator("lesson", "example")
    @classmethod
    def _body(cls, value: str, info) -> str:
        return _text(value, info.field_name, MAX_TEXT_CHARS)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return sorted({tag.strip().lower()[:40] for tag in value if tag.strip()})

    @property
    def sources(self) -> set[str]:
        return {p.source for p in self.provenance}

    @property
    def content_hash(self) -> str:
        """Identity of the advice for exact deduplication: case and whitespace do not count."""
        text = f"{normalise(self.trigger)}\n{normalise(self.lesson)}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def prompt_text(self) -> str:
        """How the lesson reads in a prompt."""
        text = f"When {self.trigger.rstrip('.')}: {self.lesson}"
        return f"{text} (e.g. {self.example})" if self.example else text


class CaseRecord(BaseModel):
    """A past episode for case-based retrieval (Memento): the task, what the agent did, and how it went."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    task_id: str = Field(..., min_length=1)
    task: str = Field(..., min_length=1, description="The task's instructions (embedded).")
    plan: str = Field("", description="What the agent did: its plan or the summary of its trajectory.")
    solution: str = Field(
        "",
        description="The solution file the evaluator's hidden tests passed ('' unless the episode passed).",
    )
    passed: bool
    score: float = Field(0.0, ge=0, le=1)
    lesson_ids: list[str] = Field(default_factory=list, description="Lessons the episode retrieved.")
    provenance: Provenance
    created_at: float = Field(default_factory=time.time)

    @field_validator("task", "plan", "solution")
    @classmethod
    def _clip(cls, value: str) -> str:
        return value.strip()[: 4 * MAX_TEXT_CHARS]


class Retrieved(BaseModel):
    """A retrieved lesson and why it ranked where it did."""

    lesson: Lesson
    score: float
    similarity: float
    keywords: float
    usefulness: float
    recency: float


WORD = re.compile(r"[a-z0-9_]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "when",
        "you",
        "your",
        "use",
        "using",
    ]
)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def keywords(text: str) -> set[str]:
    """The content words of ``text`` (lowercase, no stopwords, longer than one character)."""
    return {w for w in WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS}
