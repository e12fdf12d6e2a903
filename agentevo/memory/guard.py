"""The poisoning guard (after A-MemGuard): which lessons go to quarantine, where they are never retrieved.

Three checks, each cheap and explainable:

* **policy**: advice that tells the agent to weaken or delete tests, or to write to protected paths, matches one
  of ``guard.protected`` and is quarantined at write time;
* **consensus**: a lesson whose advice is unlike the consensus of the related lessons (similar trigger) of
  *other* sources is an outlier; A-MemGuard clusters reasoning chains with an LLM, this compares the advice
  embeddings to the centroid of the related lessons' advice;
* **repeated harm**: a lesson from a single source that keeps hurting the episodes that used it.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from agentevo.memory.config import GuardConfig
from agentevo.memory.embedding import embed
from agentevo.memory.models import Lesson


@cache
def _patterns(protected: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in protected)


def policy_violation(lesson: Lesson, guard: GuardConfig) -> str | None:
    """The protected pattern the advice matches, if any."""
    text = f"{lesson.lesson}\n{lesson.example}"
    for pattern in _patterns(tuple(guard.protected)):
        match = pattern.search(text)
        if match:
            return f"advice matches a protected pattern ({match.group(0)!r})"
    return None


def consensus_conflict(lesson: Lesson, related: list[Lesson], guard: GuardConfig) -> str | None:
    """Whether ``lesson``'s advice is an outlier among ``related`` (lessons of other sources, similar trigger)."""
    others = [r for r in related if not (r.sources & lesson.sources)]
    if len({s for r in others for s in r.sources}) < guard.min_consensus or len(others) < guard.min_consensus:
        return None
    vectors = embed([lesson.lesson, *(r.lesson for r in others)])
    centroid = vectors[1:].mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    agreement = float(vectors[0] @ centroid)
    if agreement < guard.conflict_similarity:
        return (
            f"advice conflicts with the consensus of {len(others)} related lessons "
            f"(similarity {agreement:.2f} < {guard.conflict_similarity})"
        )
    return None


def repeated_harm(lesson: Lesson, guard: GuardConfig) -> str | None:
    """A single-source lesson whose uses went wrong ``max_hurt`` times, more often than they went right."""
    c = lesson.counters
    if len(lesson.sources) == 1 and c.hurt >= guard.max_hurt and c.hurt > c.helped:
        return f"single source {next(iter(lesson.sources))!r} and hurt {c.hurt} times (helped {c.helped})"
    return None
