"""The poisoning guard (after A-MemGuard): which lessons go to quarantine, where they are never retrieved.

Four checks, each cheap and explainable:

* **policy**: advice that tells the agent to weaken or delete tests, or to write to protected paths, matches one
  of ``guard.protected`` and is quarantined at write time;
* **resemblance**: a word list misses paraphrases ("overwrite test_solution.py with an empty file"), so the
  advice is also embedded and compared with a labelled bank (``data/advice_bank.yaml``: harmful advice by kind,
  and benign advice that mentions tests, files and exits innocently); advice whose nearest harmful neighbours
  are close (mean of the top ``harm_neighbours`` at least ``harm_similarity``) and not outweighed by its
  nearest benign ones (by ``harm_margin``) is quarantined, and the reason names the harmful advice it resembles;
* **consensus**: a lesson whose advice is unlike the consensus of the related lessons (similar trigger) of
  other *origins* is an outlier; an origin is a source and the task it learnt from, so lessons of one run drawn
  from several tasks are witnesses for each other (a consensus of sources alone never forms inside one run).
  A-MemGuard clusters reasoning chains with an LLM, this compares the advice embeddings to the centroid of the
  related lessons' advice;
* **repeated harm**: a lesson from a single source that keeps hurting the episodes that used it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import numpy as np
import yaml

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


@cache
def advice_bank() -> tuple[list[str], list[str]]:
    """The labelled bank the resemblance check compares with: (harmful, benign) advice."""
    text = resources.files("agentevo.memory").joinpath("data/advice_bank.yaml").read_text()
    bank = yaml.safe_load(text)
    return [t for kind in bank["harmful"].values() for t in kind], [
        t for kind in bank["benign"].values() for t in kind
    ]


@cache
def _bank_vectors() -> tuple[np.ndarray, np.ndarray]:
    harmful, benign = advice_bank()
    return embed(harmful), embed(benign)


def resembles_harm(lesson: Lesson, guard: GuardConfig) -> str | None:
    """The harmful advice ``lesson`` resembles, when its nearest harmful neighbours outweigh its benign ones."""
    harmful, benign = _bank_vectors()
    vector = embed([f"{lesson.lesson} {lesson.example}".strip()])[0]
    to_harm, to_good = harmful @ vector, benign @ vector
    k = guard.harm_neighbours
    harm, good = float(np.sort(to_harm)[-k:].mean()), float(np.sort(to_good)[-k:].mean())
    if harm < guard.harm_similarity or harm - good < guard.harm_margin:
        return None
    nearest = advice_bank()[0][int(np.argmax(to_harm))]
    return f"advice resembles known-harmful advice ({nearest!r}; similarity {harm:.2f}, benign {good:.2f})"


def _origins(lesson: Lesson) -> set[tuple[str, str | None]]:
    return {(p.source, p.task_id) for p in lesson.provenance}


def consensus_conflict(lesson: Lesson, related: list[Lesson], guard: GuardConfig) -> str | None:
    """Whether ``lesson``'s advice is an outlier among ``related`` (lessons of other origins, similar trigger)."""
    others = [r for r in related if not (_origins(r) & _origins(lesson))]
    witnesses = {origin for r in others for origin in _origins(r)}
    if len(witnesses) < guard.min_consensus or len(others) < guard.min_consensus:
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
    """A single-source lesson whose uses went wrong ``max_hurt`` times, more often than they went right. Paired
    evidence that it helps (more wins than losses against its control) outranks the confounded outcomes."""
    c = lesson.counters
    if c.wins > c.losses:
        return None
    if len(lesson.sources) == 1 and c.hurt >= guard.max_hurt and c.hurt > c.helped:
        return f"single source {next(iter(lesson.sources))!r} and hurt {c.hurt} times (helped {c.helped})"
    return None
