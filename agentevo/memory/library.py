"""The experience library: lessons written with consolidation and the guard, retrieved with re-ranking, bounded.

Writes go through :meth:`Library.add`, which, in order: merges an exact duplicate (keeping all provenance),
quarantines what the guard rejects, merges a near-duplicate (same situation, same advice), supersedes a lesson
for the same situation that the new one contradicts (:func:`contradicted`; the old one is kept, marked
``superseded``), or adds. Whenever the library is over
its cap, near-duplicates are consolidated and the least useful lessons evicted to the ``evicted`` collection,
which export still includes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Self

import numpy as np
from pydantic import BaseModel, ValidationError

from agentevo.memory import guard
from agentevo.memory.config import MemoryConfig
from agentevo.memory.embedding import embed
from agentevo.memory.models import CaseRecord, Counters, Lesson, LessonStatus, Provenance, Retrieved
from agentevo.memory.rank import rank, recency
from agentevo.memory.service import running_url
from agentevo.memory.store import ChromaRecords, MemoryStoreError

NEIGHBOURS = 10  # lessons compared with a new one for duplicates, supersession and consensus


class AddAction(str, Enum):
    added = "added"
    merged = "merged"  # folded into an existing lesson (its id is returned)
    superseded = "superseded"  # added, and an older lesson for the same situation marked superseded
    quarantined = "quarantined"  # kept for the record, never retrieved


class AddResult(BaseModel):
    action: AddAction
    lesson_id: str
    replaced: str | None = None  # the lesson superseded
    reason: str | None = None


class PurgeResult(BaseModel):
    deleted: int  # lessons whose only source was the purged one (library and evicted)
    trimmed: int  # lessons that keep their other sources' provenance
    cases: int


class MemoryFileError(ValueError):
    """An export file that cannot be imported; nothing was written."""


class Library:
    """Lessons and cases over :class:`ChromaRecords`, under one :class:`MemoryConfig`."""

    def __init__(self, records: ChromaRecords, config: MemoryConfig | None = None) -> None:
        self.records = records
        self.config = config or MemoryConfig()

    @classmethod
    def open(cls, config: MemoryConfig, default_path: Path) -> Self:
        """Connect to ``config.url`` when set, or to the service that owns ``config.path`` (or ``default_path``),
        else own that directory in this process."""
        if config.url:
            return cls(ChromaRecords.connect(config.url), config)
        path = config.path or default_path
        url = running_url(path)  # a service owns the directory: go through it
        return cls(ChromaRecords.connect(url) if url else ChromaRecords.open_local(path), config)

    def close(self) -> None:
        self.records.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------

    def add(self, lesson: Lesson) -> AddResult:
        """Write one proposed lesson (see the module docstring for what may happen to it)."""
        vector = embed([lesson.trigger])[0]
        with self.records.lock:
            result = self._add(lesson, vector)
            self.enforce_cap()
        return result

    def _add(self, lesson: Lesson, vector: np.ndarray) -> AddResult:
        same = self.records.lessons.get(where={"hash": lesson.content_hash}, include=["metadatas"])
        if same["ids"]:
            existing = self.records.get_lessons([same["ids"][0]])[0]
            self.records.put_lessons([merge(existing, lesson)], vector[None, :])
            return AddResult(action=AddAction.merged, lesson_id=existing.id, reason="exact duplicate")
        neighbours = [
            (other, sim)
            for other, sim in self.records.nearest(vector, NEIGHBOURS)
            if other.status is LessonStatus.active
        ]
        reason = self._guard(lesson, neighbours)
        if reason:
            lesson = lesson.model_copy(
                update={"status": LessonStatus.quarantined, "quarantine_reason": reason}
            )
            self.records.put_lessons([lesson], vector[None, :])
            return AddResult(action=AddAction.quarantined, lesson_id=lesson.id, reason=reason)
        same_situation = [(o, s) for o, s in neighbours if s >= self.config.merge_similarity]
        if same_situation:
            other = same_situation[0][0]
            if advice_similarity(other, lesson) >= self.config.advice_similarity:
                self.records.put_lessons([merge(other, lesson)], vector[None, :])
                return AddResult(action=AddAction.merged, lesson_id=other.id, reason="near duplicate")
            if contradicted(other, lesson):
                return self._supersede(other, lesson, vector)
        self.records.put_lessons([lesson], vector[None, :])
        return AddResult(action=AddAction.added, lesson_id=lesson.id)

    def _guard(self, lesson: Lesson, neighbours: list[tuple[Lesson, float]]) -> str | None:
        if not self.config.guard.enabled:
            return None
        related = [o for o, s in neighbours if s >= self.config.guard.related_similarity]
        return (
            guard.policy_violation(lesson, self.config.guard)
            or guard.resembles_harm(lesson, self.config.guard)
            or guard.consensus_conflict(lesson, related, self.config.guard)
        )

    def _supersede(self, old: Lesson, new: Lesson, vector: np.ndarray) -> AddResult:
        new = new.model_copy(update={"version": old.version + 1})
        old = old.model_copy(
            update={"status": LessonStatus.superseded, "superseded_by": new.id, "updated_at": time.time()}
        )
        self.records.put_lessons([new], vector[None, :])
        self.records.put_lessons([old], self.records.vectors([old.id])[old.id][None, :])
        return AddResult(action=AddAction.superseded, lesson_id=new.id, replaced=old.id)

    def supersede(self, old_id: str, new: Lesson) -> AddResult:
        """Replace lesson ``old_id`` by ``new`` explicitly (the old one is kept, marked superseded)."""
        with self.records.lock:
            old = self._lesson(old_id)
            return self._supersede(old, new, embed([new.trigger])[0])

    def quarantine(self, lesson_id: str, reason: str) -> Lesson:
        """Take a lesson out of retrieval for good (it stays listed and exportable)."""
        with self.records.lock:
            lesson = self._lesson(lesson_id).model_copy(
                update={
                    "status": LessonStatus.quarantined,
                    "quarantine_reason": reason,
                    "updated_at": time.time(),
                }
            )
            self._rewrite([lesson])
        return lesson

    def record_outcome(self, lesson_ids: Iterable[str], helped: bool) -> list[str]:
        """Count an episode's outcome on every lesson it retrieved; returns those the guard quarantined."""
        quarantined = []
        with self.records.lock:
            lessons = self.records.get_lessons(sorted(set(lesson_ids)))
            for lesson in lessons:
                counters = lesson.counters.model_copy(
                    update={
                        "retrieved": lesson.counters.retrieved + 1,
                        "helped": lesson.counters.helped + int(helped),
                        "hurt": lesson.counters.hurt + int(not helped),
                    }
                )
                lesson.counters, lesson.updated_at = counters, time.time()
                reason = guard.repeated_harm(lesson, self.config.guard) if self.config.guard.enabled else None
                if reason and lesson.status is LessonStatus.active:
                    lesson.status, lesson.quarantine_reason = LessonStatus.quarantined, reason
                    quarantined.append(lesson.id)
            self._rewrite(lessons)
        return quarantined

    def _rewrite(self, lessons: list[Lesson]) -> None:
        """Store changed lessons under their existing vectors (their triggers did not change)."""
        if lessons:
            vectors = self.records.vectors([lesson.id for lesson in lessons])
            self.records.put_lessons(lessons, np.stack([vectors[lesson.id] for lesson in lessons]))

    def _lesson(self, lesson_id: str) -> Lesson:
        found = self.records.get_lessons([lesson_id])
        if not found:
            raise MemoryStoreError(f"no lesson {lesson_id} in the library (see `agentevo memory list`)")
        return found[0]

    # -- bounding --------------------------------------------------------------------------------

    def consolidate(self) -> int:
        """Merge near-duplicate active lessons (same situation, same advice) into the older one; returns merges."""
        merged = 0
        with self.records.lock:
            gone: set[str] = set()
            for lesson in list(self.records.all_lessons()):
                if lesson.id in gone or lesson.status is not LessonStatus.active:
                    continue
                vector = self.records.vectors([lesson.id])[lesson.id]
                for other, sim in self.records.nearest(vector, 4, status=LessonStatus.active):
                    if other.id == lesson.id or other.id in gone or sim < self.config.merge_similarity:
                        continue
                    if advice_similarity(lesson, other) < self.config.advice_similarity:
                        continue
                    keep, drop = sorted((lesson, other), key=lambda x: x.provenance[0].created_at)
                    self._rewrite([merge(keep, drop)])
                    self.records.delete_lessons([drop.id])
                    gone.add(drop.id)
                    merged += 1
                    if drop.id == lesson.id:
                        break
                    lesson = merge(keep, drop)
        return merged

    def enforce_cap(self) -> int:
        """Keep the library under ``config.cap``: consolidate, then evict (quarantined, superseded, then the least
        useful active lessons) into the evicted collection. Returns the number evicted."""
        with self.records.lock:
            if self.records.count() <= self.config.cap:
                return 0
            self.consolidate()
            excess = self.records.count() - self.config.cap
            if excess <= 0:
                return 0
            order = {LessonStatus.quarantined: 0, LessonStatus.superseded: 1, LessonStatus.active: 2}
            lessons = sorted(
                self.records.all_lessons(),
                key=lambda x: (
                    order[x.status],
                    x.counters.usefulness,
                    recency(x, self.config.half_life_days),
                ),
            )
            victims = lessons[:excess]
            vectors = self.records.vectors([v.id for v in victims])
            self.records.put_lessons(victims, np.stack([vectors[v.id] for v in victims]), evicted=True)
            self.records.delete_lessons([v.id for v in victims])
            return len(victims)

    # -- reading ---------------------------------------------------------------------------------

    def retrieve(self, query: str, k: int | None = None) -> list[Retrieved]:
        """The ``k`` best active lessons for ``query``: over-fetch by similarity, then re-rank."""
        k = k or self.config.top_k
        if not query.strip():
            return []
        vector = embed([query])[0]
        wanted = k * self.config.overfetch
        found = self.records.nearest(vector, wanted)
        candidates = [(x, s) for x, s in found if x.status is LessonStatus.active]
        if len(candidates) < k and len(found) == wanted and found[-1][1] >= self.config.min_similarity:
            # Too few active among the nearest: ask Chroma to filter (slower, so only now).
            candidates = self.records.nearest(vector, wanted, status=LessonStatus.active)
        candidates = [(x, s) for x, s in candidates if s >= self.config.min_similarity]
        return rank(query, candidates, self.config.weights, self.config.half_life_days, k)

    def get(self, lesson_id: str) -> tuple[Lesson, bool] | None:
        """A lesson and whether it was evicted; None when it is in neither collection."""
        for evicted in (False, True):
            found = self.records.get_lessons([lesson_id], evicted=evicted)
            if found:
                return found[0], evicted
        return None

    def lessons(self, status: LessonStatus | None = None, *, evicted: bool = False) -> list[Lesson]:
        return [x for x in self.records.all_lessons(evicted=evicted) if status is None or x.status is status]

    def add_case(self, case: CaseRecord) -> None:
        with self.records.lock:
            self.records.put_cases([case])

    def similar_cases(self, task: str, k: int = 4) -> list[tuple[CaseRecord, float]]:
        """Past episodes of the most similar tasks (Memento's case-based retrieval; K=4 did best there)."""
        return self.records.nearest_cases(task, k)

    def solved_cases(self, task: str, k: int, *, other_than: str | None) -> list[tuple[CaseRecord, float]]:
        """Up to ``k`` verified solutions of tasks similar to ``task`` (at least ``case_similarity``), one per
        task and none of task ``other_than``: a case never shows an episode its own task's answer."""
        found = self.records.nearest_cases(task, k * self.config.overfetch, passed=True)
        chosen: dict[str, tuple[CaseRecord, float]] = {}
        for case, score in found:
            if case.solution and case.task_id != other_than and score >= self.config.case_similarity:
                chosen.setdefault(case.task_id, (case, score))
        return list(chosen.values())[:k]

    # -- provenance, export and import -----------------------------------------------------------

    def purge(self, source: str) -> PurgeResult:
        """Remove everything ``source`` wrote: its lessons go; lessons others vouch for lose its provenance."""
        deleted = trimmed = 0
        with self.records.lock:
            for evicted in (False, True):
                doomed, kept = [], []
                for lesson in self.records.all_lessons(evicted=evicted):
                    if source not in lesson.sources:
                        continue
                    if lesson.sources == {source}:
                        doomed.append(lesson.id)
                    else:
                        lesson.provenance = [p for p in lesson.provenance if p.source != source]
                        kept.append(lesson)
                self.records.delete_lessons(doomed, evicted=evicted)
                if kept:
                    self.records.put_lessons(kept, evicted=evicted)
                deleted, trimmed = deleted + len(doomed), trimmed + len(kept)
            cases = [c.id for c in self.records.all_cases() if c.provenance.source == source]
            if cases:
                self.records.cases.delete(ids=cases)
        return PurgeResult(deleted=deleted, trimmed=trimmed, cases=len(cases))

    def export(self, path: Path) -> dict[str, int]:
        """Every lesson (evicted ones too) and case as JSON lines; returns counts."""
        counts = {"lessons": 0, "evicted": 0, "cases": 0}
        tmp = Path(path).with_name(f".{Path(path).name}.tmp")
        with self.records.lock, tmp.open("w", encoding="utf-8") as out:
            for evicted in (False, True):
                for lesson in self.records.all_lessons(evicted=evicted):
                    out.write(
                        json.dumps({"type": "lesson", "evicted": evicted, "record": lesson.model_dump()})
                    )
                    out.write("\n")
                    counts["evicted" if evicted else "lessons"] += 1
            for case in self.records.all_cases():
                out.write(json.dumps({"type": "case", "record": case.model_dump()}) + "\n")
                counts["cases"] += 1
        tmp.replace(path)
        return counts

    def import_(self, path: Path) -> dict[str, int]:
        """Load an export (records are replaced by id, so importing twice changes nothing). The whole file is
        checked first: one bad line and nothing is written."""
        lessons, evicted, cases = read_export(path)
        with self.records.lock:
            self.records.put_lessons(lessons)
            self.records.put_lessons(evicted, evicted=True)
            self.records.put_cases(cases)
            self.enforce_cap()
        return {"lessons": len(lessons), "evicted": len(evicted), "cases": len(cases)}


def read_export(path: Path) -> tuple[list[Lesson], list[Lesson], list[CaseRecord]]:
    lessons: list[Lesson] = []
    evicted: list[Lesson] = []
    cases: list[CaseRecord] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MemoryFileError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if item.get("type") == "lesson":
                (evicted if item.get("evicted") else lessons).append(Lesson.model_validate(item["record"]))
            elif item.get("type") == "case":
                cases.append(CaseRecord.model_validate(item["record"]))
            else:
                raise ValueError(f"unknown record type {item.get('type')!r} (lesson or case)")
        except (ValueError, KeyError, AttributeError, ValidationError) as exc:
            detail = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else _first_error(exc)
            raise MemoryFileError(f"{path} line {number}: {detail}; nothing was imported") from None
    return lessons, evicted, cases


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def contradicted(old: Lesson, new: Lesson) -> bool:
    """Whether ``new`` (other advice for the same situation) should replace ``old`` rather than stand beside it:
    the evidence is against the old advice (it hurt more often than it helped), or only the new one was verified.
    Different advice alone is not a contradiction: two honest lessons may complement each other."""
    return old.counters.hurt > old.counters.helped or (new.verified and not old.verified)


def advice_similarity(a: Lesson, b: Lesson) -> float:
    vectors = embed([a.lesson, b.lesson])
    return float(vectors[0] @ vectors[1])


def merge(keep: Lesson, other: Lesson) -> Lesson:
    """``keep`` with ``other``'s provenance, tags and counters folded in (its text wins; the version goes up)."""
    seen = {_key(p) for p in keep.provenance}
    provenance = keep.provenance + [p for p in other.provenance if _key(p) not in seen]
    mine, theirs = keep.counters.model_dump(), other.counters.model_dump()
    counters = Counters(**{name: mine[name] + theirs[name] for name in mine})
    return keep.model_copy(
        update={
            "provenance": provenance,
            "tags": sorted(set(keep.tags) | set(other.tags)),
            "counters": counters,
            "version": keep.version + 1,
            "verified": keep.verified or other.verified,
            "example": keep.example or other.example,
            "updated_at": time.time(),
        }
    )


def _key(p: Provenance) -> tuple[str | None, ...]:
    return (p.source, p.run_id, p.node_id, p.task_id, p.episode_id)
