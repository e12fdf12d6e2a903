"""Learning from episodes: an LLM reflects on a trajectory and proposes lessons; each is verified before it is
written (the source task re-run with the lesson must pass), then goes through the library's consolidation and
guard like any other write.

Reflection takes successes and failures alike (ReasoningBank): a failure's lesson says what to avoid. The answer is
held to a JSON schema (:class:`LessonDrafts`, through ``response_format``), so even the 135M embedded model
answers with lessons that parse; one that still does not is a named failure (``Distilled.failure``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from agentevo.llm.structured import StructuredOutputError
from agentevo.memory.library import AddResult, Library
from agentevo.memory.models import Lesson, Provenance

TRAJECTORY_CHARS = 6000  # the trajectory's tail the reflection reads (small models have small contexts)
MAX_PROPOSED = (
    3  # lessons one answer may hold (the schema's maxItems; memory.distil_max_lessons cuts further)
)

SYSTEM = """You study one episode of a coding agent and write reusable lessons for future, different tasks.
Answer with a JSON object {"lessons": [...]}. Each lesson is an object with the keys:
"trigger": the kind of situation or task in which the lesson applies (general, not this task's names),
"lesson": the advice, one or two sentences, imperative,
"example": a short concrete example, or "",
"tags": a few lowercase keywords.
Never advise changing, skipping or deleting tests, and never advise writing outside the workspace."""


class LessonDraft(BaseModel):
    """One lesson as the model proposes it; its JSON schema holds the answer (lengths bound the tokens)."""

    trigger: str = Field(min_length=3, max_length=120)
    lesson: str = Field(min_length=3, max_length=200)
    example: str = Field(max_length=120)
    tags: list[Annotated[str, StringConstraints(max_length=20)]] = Field(max_length=3)


class LessonDrafts(BaseModel):
    """A reflection's whole answer."""

    lessons: list[LessonDraft] = Field(min_length=1, max_length=MAX_PROPOSED)


# A check that the source task passes when re-run with a lesson shown to the agent (None: it could not be run).
Rerun = Callable[[Lesson], bool | None]
# One structured model call: (system prompt, user message, answer model) -> the answer (``HostLLM.ask_structured``
# through a gateway); raises StructuredOutputError when the backbone gives no valid answer.
Ask = Callable[[str, str, type[LessonDrafts]], LessonDrafts]


class Distilled(BaseModel):
    """What one reflection produced: the lessons proposed, kept after verification, and what writing did."""

    proposed: list[Lesson]
    rejected: list[str]  # why each unusable item of the answer was dropped
    verified: list[Lesson]
    written: list[AddResult]
    failure: str | None = None  # why the reflection gave no answer at all (a StructuredFailure value)


def reflection_prompt(task: str, trajectory: str, passed: bool, max_lessons: int) -> str:
    """The user message of a reflection (``SYSTEM`` is its system prompt)."""
    outcome = "PASSED its hidden tests" if passed else "FAILED its hidden tests"
    return (
        f"Task:\n{task[:2000]}\n\nThe episode {outcome}. Its trajectory (the end of it):\n"
        f"{trajectory[-TRAJECTORY_CHARS:]}\n\nWrite at most {max_lessons} lessons."
    )


def to_lessons(
    drafts: LessonDrafts, provenance: Provenance, max_lessons: int
) -> tuple[list[Lesson], list[str]]:
    """The drafts as lessons (the first ``max_lessons``); a draft the lesson model refuses is reported."""
    lessons, rejected = [], []
    for draft in drafts.lessons[:max_lessons]:
        try:
            lessons.append(Lesson(**draft.model_dump(), provenance=[provenance]))
        except ValidationError as exc:
            rejected.append(_errors(exc))
    return lessons, rejected


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:300]


def verify(lesson: Lesson, rerun: Rerun, attempts: int) -> bool:
    """Whether a re-run of the source task with ``lesson`` passes within ``attempts`` tries. For a failed
    source this is the lesson helping; for a passed one, it not hurting."""
    return any(rerun(lesson) for _ in range(attempts))


def learn(
    library: Library,
    ask: Ask,
    *,
    task: str,
    trajectory: str,
    passed: bool,
    provenance: Provenance,
    rerun: Rerun | None = None,
) -> Distilled:
    """Reflect on one episode and write the lessons that survive verification (``memory.verify_attempts``
    re-runs each; with 0, or without a ``rerun``, lessons are written unverified). The answer is held to
    :class:`LessonDrafts`; a reflection that gives none comes back with its ``failure`` named, nothing written."""
    config = library.config
    try:
        drafts = ask(
            SYSTEM, reflection_prompt(task, trajectory, passed, config.distil_max_lessons), LessonDrafts
        )
    except StructuredOutputError as exc:
        return Distilled(proposed=[], rejected=[str(exc)], verified=[], written=[], failure=exc.reason.value)
    proposed, rejected = to_lessons(drafts, provenance, config.distil_max_lessons)
    checking = rerun is not None and config.verify_attempts > 0
    verified = [
        lesson.model_copy(update={"verified": checking})
        for lesson in proposed
        if not checking or verify(lesson, rerun, config.verify_attempts)
    ]
    written = [library.add(lesson) for lesson in verified]
    return Distilled(proposed=proposed, rejected=rejected, verified=verified, written=written)
