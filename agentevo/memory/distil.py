"""Learning from episodes: an LLM reflects on a trajectory and proposes lessons; each is verified before it is
written, then goes through the library's consolidation and guard like any other write.

Verification is counterfactual: the source task (and up to ``memory.verify_neighbours`` similar tasks) is re-run
with the lesson served and without it, ``memory.verify_attempts`` paired times each. A lesson is written only when
it wins more pairs than it loses (passed with it, failed without); one that loses more than it wins is written in
quarantine, as evidence; one that changes nothing is not written: a lesson from an episode that passed anyway proves
nothing. The runs without a lesson are the control, shared by every lesson of the same task.

Reflection takes successes and failures alike (ReasoningBank): a failure's lesson says what to avoid. The answer is
held to a JSON schema (:class:`LessonDrafts`, through ``response_format``), so even the 135M embedded model
answers with lessons that parse; one that still does not is a named failure (``Distilled.failure``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from agentevo.llm.structured import StructuredOutputError
from agentevo.memory.library import AddAction, AddResult, Library
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


# Whether a task passes when re-run with a lesson shown to the agent (None: it could not be run).
Rerun = Callable[[Lesson], bool | None]
# Whether the same task passed its i-th re-run without any lesson (the control; shared between lessons).
Control = Callable[[int], bool | None]
# One structured model call: (system prompt, user message, answer model) -> the answer (``HostLLM.ask_structured``
# through a gateway); raises StructuredOutputError when the backbone gives no valid answer.
Ask = Callable[[str, str, type[LessonDrafts]], LessonDrafts]


class Distilled(BaseModel):
    """What one reflection produced: the lessons proposed, kept after verification, and what writing did."""

    proposed: list[Lesson]
    rejected: list[str]  # why each unusable item of the answer was dropped
    verified: list[Lesson]
    written: list[AddResult]
    harmful: list[AddResult] = Field(default_factory=list)  # written in quarantine: they lost paired re-runs
    reruns: int = 0  # episodes the verification ran with a lesson (the controls are counted where they run)
    failure: str | None = None  # why the reflection gave no answer at all (a StructuredFailure value)


class Evidence(BaseModel):
    """Paired re-runs of one lesson: pairs it won (passed with it, failed without), lost, and tied."""

    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def runs(self) -> int:
        return self.wins + self.losses + self.ties


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


def paired(lesson: Lesson, checks: list[tuple[Rerun, Control]], attempts: int) -> Evidence:
    """``attempts`` paired re-runs of ``lesson`` on each task of ``checks`` (the source first): with the lesson,
    against the control without it; a pair the infrastructure spoiled counts for nothing."""
    evidence = Evidence()
    for rerun, control in checks:
        for i in range(attempts):
            treated = rerun(lesson)
            baseline = control(i) if treated is not None else None
            if baseline is None:
                continue
            key = "wins" if treated and not baseline else "losses" if baseline and not treated else "ties"
            setattr(evidence, key, getattr(evidence, key) + 1)
    return evidence


def credited(lesson: Lesson, evidence: Evidence) -> Lesson:
    """``lesson`` verified, with its paired evidence in its counters."""
    counters = lesson.counters.model_copy(update={"wins": evidence.wins, "losses": evidence.losses})
    return lesson.model_copy(update={"verified": True, "counters": counters})


def learn(
    library: Library,
    ask: Ask,
    *,
    task: str,
    trajectory: str,
    passed: bool,
    provenance: Provenance,
    checks: list[tuple[Rerun, Control]] | None = None,
) -> Distilled:
    """Reflect on one episode and write the lessons that win their paired re-runs (``checks``: the source task's
    and its neighbours', see the module docstring); with ``memory.verify_attempts`` 0, or no checks, lessons are
    written unverified. The answer is held to :class:`LessonDrafts`; a reflection that gives none comes back with
    its ``failure`` named, nothing written."""
    config = library.config
    try:
        drafts = ask(
            SYSTEM, reflection_prompt(task, trajectory, passed, config.distil_max_lessons), LessonDrafts
        )
    except StructuredOutputError as exc:
        return Distilled(proposed=[], rejected=[str(exc)], verified=[], written=[], failure=exc.reason.value)
    proposed, rejected = to_lessons(drafts, provenance, config.distil_max_lessons)
    if not checks or config.verify_attempts == 0:
        return Distilled(
            proposed=proposed,
            rejected=rejected,
            verified=proposed,
            written=[library.add(lesson) for lesson in proposed],
        )
    evidence = [paired(lesson, checks, config.verify_attempts) for lesson in proposed]
    verified = [credited(x, e) for x, e in zip(proposed, evidence, strict=True) if e.wins > e.losses]
    harmful = [
        _quarantined(library, credited(x, e), e)
        for x, e in zip(proposed, evidence, strict=True)
        if e.losses > e.wins
    ]
    written = [library.add(lesson) for lesson in verified]
    reruns = sum(e.runs for e in evidence)
    return Distilled(
        proposed=proposed,
        rejected=rejected,
        verified=verified,
        written=written,
        harmful=harmful,
        reruns=reruns,
    )


def _quarantined(library: Library, lesson: Lesson, evidence: Evidence) -> AddResult:
    """Write a lesson that lost its paired re-runs straight into quarantine (kept as evidence, never served)."""
    reason = f"lost paired re-runs: {evidence.losses} lost, {evidence.wins} won, {evidence.ties} tied"
    written = library.add(lesson)
    library.quarantine(written.lesson_id, reason)
    return written.model_copy(update={"action": AddAction.quarantined, "reason": reason})
