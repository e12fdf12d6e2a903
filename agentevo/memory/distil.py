"""Learning from episodes: an LLM reflects on a trajectory and proposes lessons; each is verified before it is
written (the source task re-run with the lesson must pass), then goes through the library's consolidation and
guard like any other write.

Reflection takes successes and failures alike (ReasoningBank): a failure's lesson says what to avoid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from agentevo.memory.library import AddResult, Library
from agentevo.memory.models import Lesson, Provenance

TRAJECTORY_CHARS = 6000  # the trajectory's tail the reflection reads (small models have small contexts)
JSON_ARRAY = re.compile(r"\[.*\]", re.DOTALL)

SYSTEM = """You study one episode of a coding agent and write reusable lessons for future, different tasks.
Answer with a JSON array only, no prose. Each element is an object with the keys:
"trigger": the kind of situation or task in which the lesson applies (general, not this task's names),
"lesson": the advice, one or two sentences, imperative,
"example": a short concrete example, or "",
"tags": a few lowercase keywords.
Never advise changing, skipping or deleting tests, and never advise writing outside the workspace."""

# A check that the source task passes when re-run with a lesson shown to the agent (None: it could not be run).
Rerun = Callable[[Lesson], bool | None]
# One model call: (system prompt, user message) -> the reply's text (``HostLLM.ask`` through a gateway).
Ask = Callable[[str, str], str]


class Distilled(BaseModel):
    """What one reflection produced: the lessons proposed, kept after verification, and what writing did."""

    proposed: list[Lesson]
    rejected: list[str]  # why each unusable item of the answer was dropped
    verified: list[Lesson]
    written: list[AddResult]


def reflection_prompt(task: str, trajectory: str, passed: bool, max_lessons: int) -> str:
    """The user message of a reflection (``SYSTEM`` is its system prompt)."""
    outcome = "PASSED its hidden tests" if passed else "FAILED its hidden tests"
    return (
        f"Task:\n{task[:2000]}\n\nThe episode {outcome}. Its trajectory (the end of it):\n"
        f"{trajectory[-TRAJECTORY_CHARS:]}\n\nWrite at most {max_lessons} lessons as a JSON array."
    )


def parse_lessons(text: str, provenance: Provenance, max_lessons: int) -> tuple[list[Lesson], list[str]]:
    """Lessons from a model's answer (the first JSON array in it); unusable items are reported, not raised."""
    match = JSON_ARRAY.search(text)
    if match is None:
        return [], ["the answer holds no JSON array"]
    try:
        items = json.loads(match.group(0))
    except ValueError as exc:
        return [], [f"the answer's JSON does not parse: {exc}"]
    lessons, rejected = [], []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            rejected.append(f"not an object: {str(item)[:80]}")
            continue
        fields = {k: item[k] for k in ("trigger", "lesson", "example", "tags") if k in item}
        try:
            lessons.append(Lesson(**fields, provenance=[provenance]))
        except ValidationError as exc:
            rejected.append(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:300]
            )
        except TypeError as exc:
            rejected.append(str(exc)[:300])
    return lessons[:max_lessons], rejected


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
    re-runs each; with 0, or without a ``rerun``, lessons are written unverified)."""
    config = library.config
    reply = ask(SYSTEM, reflection_prompt(task, trajectory, passed, config.distil_max_lessons))
    proposed, rejected = parse_lessons(reply, provenance, config.distil_max_lessons)
    checking = rerun is not None and config.verify_attempts > 0
    verified = [
        lesson.model_copy(update={"verified": checking})
        for lesson in proposed
        if not checking or verify(lesson, rerun, config.verify_attempts)
    ]
    written = [library.add(lesson) for lesson in verified]
    return Distilled(proposed=proposed, rejected=rejected, verified=verified, written=written)
