"""Memory around a run's episodes: lessons served read-only through the gateway, outcomes and cases written back.

The host side only (sandboxes never write): :func:`run_memory` opens the library for a run (starting the memory
service when none owns the directory, so CLI readers and other processes can share it), and :class:`RunMemory`
is what the gateway and the suite runner call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentevo.files import read_json, write_json_atomic
from agentevo.memory.config import MemoryConfig
from agentevo.memory.library import Library
from agentevo.memory.models import CaseRecord, Lesson, Provenance
from agentevo.memory.service import MemoryService, running_url
from agentevo.memory.store import ChromaRecords


def served(lesson: Lesson, score: float) -> dict[str, Any]:
    """A lesson as an agent sees it: the advice, without counters or provenance."""
    return {
        "id": lesson.id,
        "trigger": lesson.trigger,
        "lesson": lesson.lesson,
        "example": lesson.example,
        "tags": lesson.tags,
        "score": round(score, 4),
    }


def served_case(case: CaseRecord, score: float) -> dict[str, Any]:
    """A solved case as an agent sees it: the task and the solution the hidden tests passed."""
    return {
        "id": case.id,
        "task_id": case.task_id,
        "task": case.task,
        "solution": case.solution,
        "score": round(score, 4),
    }


class PinnedLessons:
    """The memory of a verification re-run: it serves exactly the lessons under test and learns nothing."""

    def __init__(self, lessons: list[Lesson]) -> None:
        self.lessons = lessons

    def read(self, query: str, k: int) -> list[dict[str, Any]]:
        return [served(lesson, 1.0) for lesson in self.lessons[:k]]

    def cases(self, query: str, k: int, task_id: str | None) -> list[dict[str, Any]]:
        """No cases: the re-run measures the lesson alone."""
        return []

    def after_episode(self, **episode: Any) -> None:
        """A re-run only checks a lesson; its outcome is not evidence for the library."""


class RunMemory:
    """One run's use of the library: ``read`` is the gateway's memory reader, ``after_episode`` learns."""

    def __init__(
        self,
        library: Library,
        *,
        run_id: str,
        node_id: str | None = None,
        record: Path | None = None,
        url: str | None = None,
    ) -> None:
        self.library = library
        self.run_id = run_id
        self.node_id = node_id
        self.url = url  # the memory service's: how other processes (Ray workers) join the library
        self.used: set[str] = set()  # every lesson an episode of this run read
        self.cases_served: set[str] = set()  # every solved case served to an episode of this run
        self.record = record  # where ``used_by`` is kept as JSON after every episode (the nodes' record)
        # agent (evolution node) -> the lessons its episodes read; a resumed run continues the record
        saved = read_json(record) if record is not None else {}
        self.used_by: dict[str, set[str]] = {node: set(ids) for node, ids in saved.items()}
        self._lock = threading.Lock()

    def read(self, query: str, k: int) -> list[dict[str, Any]]:
        """Lessons for an agent, as the gateway serves them (no counters, no provenance: advice only)."""
        return [served(hit.lesson, hit.score) for hit in self.library.retrieve(query, k)]

    def cases(self, query: str, k: int, task_id: str | None) -> list[dict[str, Any]]:
        """Verified solutions of similar tasks, never of ``task_id`` (the episode's own task), as worked examples."""
        found = self.library.solved_cases(query, k, other_than=task_id)
        with self._lock:
            self.cases_served.update(case.id for case, _ in found)
        return [served_case(case, score) for case, score in found]

    def note_used(self, node: str | None, served: list[str]) -> None:
        """Count ``served`` as read by ``node``'s episodes (also for episodes other processes ran, e.g. Ray's)."""
        with self._lock:
            self.used.update(served)
            if node is not None:
                self.used_by.setdefault(node, set()).update(served)
                if self.record is not None:
                    write_json_atomic(self.record, {k: sorted(v) for k, v in sorted(self.used_by.items())})

    def after_episode(
        self,
        *,
        task_id: str,
        task: str,
        episode_id: str,
        passed: bool,
        score: float,
        served: list[str],
        plan: str = "",
        solution: str = "",
        node_id: str | None = None,
    ) -> None:
        """Count the outcome on the lessons the episode read, and keep the episode as a case (with its solution
        when the hidden tests passed it). ``node_id``: the agent (evolution node) that ran it, when the run has
        several. With ``memory.learn`` off only the reading is noted."""
        node = node_id or self.node_id
        self.note_used(node, served)
        if not self.library.config.learn:
            return
        self.library.record_outcome(served, helped=passed)
        provenance = Provenance(
            source=self.run_id,
            run_id=self.run_id,
            node_id=node,
            task_id=task_id,
            episode_id=episode_id,
        )
        self.library.add_case(
            CaseRecord(
                task_id=task_id,
                task=task,
                plan=plan,
                solution=solution if passed else "",
                passed=passed,
                score=score,
                lesson_ids=served,
                provenance=provenance,
            )
        )


@contextlib.contextmanager
def run_memory(
    config: MemoryConfig,
    default_path: Path,
    *,
    run_id: str,
    node_id: str | None = None,
    record: Path | None = None,
) -> Iterator[RunMemory | None]:
    """The run's memory, or None when ``memory.enabled`` is off. Uses ``memory.url`` or the service already
    serving the directory; otherwise starts one for the run's duration."""
    if not config.enabled:
        yield None
        return
    path = config.path or default_path
    with contextlib.ExitStack() as stack:
        url = config.url or running_url(path)
        if url is None:
            url = stack.enter_context(MemoryService(path, config.port)).url
        library = stack.enter_context(Library(ChromaRecords.connect(url), config))
        yield RunMemory(library, run_id=run_id, node_id=node_id, record=record, url=url)
