"""Experience memory: lessons distilled from trajectories, kept in ChromaDB, verified, consolidated, bounded, guarded.

::

    from agentevo.memory import Library, Lesson, Provenance, MemoryConfig

    with Library.open(MemoryConfig(), default_path=Path("archives/memory")) as library:
        library.add(Lesson(trigger="the task asks for a function and gives examples",
                           lesson="run the examples as asserts before submitting",
                           provenance=[Provenance(source="run-1")]))
        for hit in library.retrieve("write a function; examples are given"):
            print(hit.lesson.prompt_text())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentevo.memory.config import GuardConfig, MemoryConfig, RankWeights

if TYPE_CHECKING:
    from agentevo.memory.library import AddAction, AddResult, Library, MemoryFileError, PurgeResult
    from agentevo.memory.models import CaseRecord, Counters, Lesson, LessonStatus, Provenance, Retrieved
    from agentevo.memory.store import ChromaRecords, MemoryStoreError

# The configuration imports this package: Chroma and the embedding model load only when memory is used.
_LAZY = {
    "agentevo.memory.library": ("AddAction", "AddResult", "Library", "MemoryFileError", "PurgeResult"),
    "agentevo.memory.models": ("CaseRecord", "Counters", "Lesson", "LessonStatus", "Provenance", "Retrieved"),
    "agentevo.memory.store": ("ChromaRecords", "MemoryStoreError"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'agentevo.memory' has no attribute {name!r}")


__all__ = [
    "AddAction",
    "AddResult",
    "CaseRecord",
    "ChromaRecords",
    "Counters",
    "GuardConfig",
    "Lesson",
    "LessonStatus",
    "Library",
    "MemoryConfig",
    "MemoryFileError",
    "MemoryStoreError",
    "Provenance",
    "PurgeResult",
    "RankWeights",
    "Retrieved",
]
