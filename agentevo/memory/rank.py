"""Retrieval re-ranking: similarity, keyword overlap, measured usefulness and recency, weighted (config)."""

from __future__ import annotations

import math
import time

from agentevo.memory.config import RankWeights
from agentevo.memory.models import Lesson, Retrieved, keywords

DAY_S = 86_400.0


def keyword_overlap(query_words: set[str], lesson: Lesson) -> float:
    """Share of the query's content words that appear in the lesson's trigger or tags."""
    if not query_words:
        return 0.0
    return len(query_words & (keywords(lesson.trigger) | set(lesson.tags))) / len(query_words)


def recency(lesson: Lesson, half_life_days: float, now: float | None = None) -> float:
    """1.0 for a lesson updated just now, halving every ``half_life_days``."""
    age_days = max(0.0, ((now or time.time()) - lesson.updated_at) / DAY_S)
    return math.pow(0.5, age_days / half_life_days)


def rank(
    query: str,
    candidates: list[tuple[Lesson, float]],
    weights: RankWeights,
    half_life_days: float,
    k: int,
) -> list[Retrieved]:
    """The best ``k`` of ``candidates`` (lesson, cosine similarity), best first."""
    words = keywords(query)
    now = time.time()
    scored = []
    for lesson, similarity in candidates:
        parts = {
            "similarity": max(0.0, similarity),
            "keywords": keyword_overlap(words, lesson),
            "usefulness": lesson.counters.usefulness,
            "recency": recency(lesson, half_life_days, now),
        }
        total = sum(getattr(weights, name) * value for name, value in parts.items())
        scored.append(Retrieved(lesson=lesson, score=total, **parts))
    scored.sort(key=lambda r: r.score, reverse=True)
    return scored[:k]
