"""The Chroma side of memory: lessons and cases as records, one writer per persist directory.

Three collections: ``lessons`` (the library, embedded on each lesson's trigger), ``evicted`` (lessons pushed out
by the cap, kept for export), ``cases`` (past episodes, embedded on the task). The full record is kept as JSON in
the metadata; scalar fields beside it (``status``, ``hash``) serve selective filters.

A persist directory has exactly one owning process (Chroma loses vectors when several write one directory):
:meth:`ChromaRecords.open_local` takes a lock file, and every other process connects to the owner's server
(:meth:`ChromaRecords.connect`, see ``agentevo memory serve``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlparse

import httpx
import numpy as np
from chromadb.errors import ChromaError
from filelock import FileLock

from agentevo.files import acquire_lock
from agentevo.memory.embedding import MiniLMEmbedding, embed
from agentevo.memory.models import CaseRecord, Lesson, LessonStatus
from agentevo.memory.owner import lock_path, take_over

LESSONS, EVICTED, CASES = "lessons", "evicted", "cases"
PAGE = 500  # rows per Chroma call when reading or writing in bulk
# What Chroma raises for an unreadable directory or an unreachable server (it has no narrower base class).
CHROMA_ERRORS = (ChromaError, ValueError, OSError, httpx.HTTPError)


class MemoryStoreError(RuntimeError):
    """Memory cannot be opened or written; the message names the fix."""


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def take_lock(path: Path) -> FileLock:
    """The writer lock of ``path``, taken over from an owner that died; a clear error when one lives."""
    lock = acquire_lock(
        lock_path(path),
        timeout=0,
        error=lambda _: MemoryStoreError(
            f"the memory at {path} is open in another process (one writer per directory): connect to it "
            "instead (memory.url, the address `agentevo memory serve` printed)"
        ),
    )
    try:
        take_over(path)
    except BaseException:
        lock.release()
        raise
    return lock


class ChromaRecords:
    """Lessons and cases in Chroma; thread-safe within a process."""

    def __init__(self, client: Any, *, lock: FileLock | None = None, where: str = "") -> None:
        self.client = client
        self.where = where
        self._writer_lock = lock
        self.lock = threading.RLock()
        try:
            self.lessons, self.evicted, self.cases = (
                client.get_or_create_collection(
                    name, embedding_function=MiniLMEmbedding(), configuration={"hnsw": {"space": "cosine"}}
                )
                for name in (LESSONS, EVICTED, CASES)
            )
        except CHROMA_ERRORS as exc:
            self.close()
            raise MemoryStoreError(
                f"the memory at {where} is unreadable ({exc.__class__.__name__}: {exc}); nothing was changed "
                "there: restore it from an export (`agentevo memory import`) into a new directory"
            ) from None

    @classmethod
    def open_local(cls, path: Path) -> Self:
        """The one writer of ``path`` (a Chroma persist directory, created when missing)."""
        import chromadb

        lock = take_lock(path)
        try:
            client = chromadb.PersistentClient(path=str(path), settings=_settings())
        except CHROMA_ERRORS as exc:
            lock.release()
            raise MemoryStoreError(
                f"the memory at {path} is unreadable ({exc.__class__.__name__}: {exc}); nothing was changed "
                "there: restore it from an export (`agentevo memory import`) into a new directory"
            ) from None
        return cls(client, lock=lock, where=str(path))

    @classmethod
    def connect(cls, url: str) -> Self:
        """A client of the memory server at ``url`` (``http://HOST:PORT``)."""
        import chromadb

        parsed = urlparse(url)
        if not parsed.hostname or not parsed.port:
            raise MemoryStoreError(f"memory url {url!r} is not http://HOST:PORT")
        try:
            client = chromadb.HttpClient(host=parsed.hostname, port=parsed.port, settings=_settings())
        except CHROMA_ERRORS as exc:
            raise MemoryStoreError(
                f"no memory server answers at {url} ({exc.__class__.__name__}): start one with "
                "`agentevo memory serve`"
            ) from None
        return cls(client, where=url)

    def close(self) -> None:
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lessons ---------------------------------------------------------------------------------

    def put_lessons(
        self, lessons: Sequence[Lesson], vectors: np.ndarray | None = None, *, evicted: bool = False
    ) -> None:
        """Insert or replace lessons (by id); vectors are computed from the triggers when not given."""
        if not lessons:
            return
        if vectors is None:
            vectors = embed([lesson.trigger for lesson in lessons])
        collection = self.evicted if evicted else self.lessons
        for start in range(0, len(lessons), PAGE):
            chunk = lessons[start : start + PAGE]
            collection.upsert(
                ids=[lesson.id for lesson in chunk],
                embeddings=vectors[start : start + PAGE],
                documents=[lesson.trigger for lesson in chunk],
                metadatas=[_lesson_meta(lesson) for lesson in chunk],
            )

    def get_lessons(self, ids: Sequence[str], *, evicted: bool = False) -> list[Lesson]:
        if not ids:
            return []
        collection = self.evicted if evicted else self.lessons
        got = collection.get(ids=list(ids), include=["metadatas"])
        by_id = {i: _lesson(m) for i, m in zip(got["ids"], got["metadatas"], strict=True)}
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        got = self.lessons.get(ids=list(ids), include=["embeddings"])
        return {
            i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }

    def all_lessons(self, *, evicted: bool = False) -> Iterable[Lesson]:
        collection = self.evicted if evicted else self.lessons
        for metadata in _pages(collection):
            yield _lesson(metadata)

    def delete_lessons(self, ids: Sequence[str], *, evicted: bool = False) -> None:
        if ids:
            (self.evicted if evicted else self.lessons).delete(ids=list(ids))

    def nearest(
        self, vector: np.ndarray, n: int, *, status: LessonStatus | None = None
    ) -> list[tuple[Lesson, float]]:
        """Up to ``n`` lessons by cosine similarity to ``vector``, most similar first."""
        total = self.lessons.count()
        if total == 0:
            return []
        where = {"status": status.value} if status is not None else None
        found = self.lessons.query(
            query_embeddings=[vector],
            n_results=min(n, total),
            where=where,
            include=["metadatas", "distances"],
        )
        return [
            (_lesson(m), 1.0 - float(d))
            for m, d in zip(found["metadatas"][0], found["distances"][0], strict=True)
        ]

    def count(self, *, evicted: bool = False) -> int:
        return (self.evicted if evicted else self.lessons).count()

    # -- cases -----------------------------------------------------------------------------------

    def put_cases(self, cases: Sequence[CaseRecord]) -> None:
        if not cases:
            return
        self.cases.upsert(
            ids=[case.id for case in cases],
            embeddings=embed([case.task for case in cases]),
            documents=[case.task for case in cases],
            metadatas=[{"json": case.model_dump_json(), "passed": case.passed} for case in cases],
        )

    def nearest_cases(self, text: str, n: int, passed: bool | None = None) -> list[tuple[CaseRecord, float]]:
        """The ``n`` cases nearest ``text``, best first; ``passed``: only those with that outcome."""
        total = self.cases.count()
        if total == 0:
            return []
        found = self.cases.query(
            query_embeddings=embed([text]),
            n_results=min(n, total),
            where=None if passed is None else {"passed": passed},
            include=["metadatas", "distances"],
        )
        return [
            (CaseRecord.model_validate_json(m["json"]), 1.0 - float(d))
            for m, d in zip(found["metadatas"][0], found["distances"][0], strict=True)
        ]

    def all_cases(self) -> Iterable[CaseRecord]:
        for metadata in _pages(self.cases):
            yield CaseRecord.model_validate_json(metadata["json"])


def _lesson_meta(lesson: Lesson) -> dict[str, Any]:
    return {
        "json": lesson.model_dump_json(),
        "status": lesson.status.value,
        "hash": lesson.content_hash,
        "sources": json.dumps(sorted(lesson.sources)),
    }


def _lesson(metadata: dict[str, Any]) -> Lesson:
    return Lesson.model_validate_json(metadata["json"])


def _pages(collection: Any) -> Iterable[dict[str, Any]]:
    offset = 0
    while True:
        got = collection.get(include=["metadatas"], limit=PAGE, offset=offset)
        yield from got["metadatas"]
        if len(got["ids"]) < PAGE:
            return
        offset += PAGE
