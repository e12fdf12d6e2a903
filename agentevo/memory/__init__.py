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

from agentevo.memory.config import GuardConfig, MemoryConfig, RankWeights
from agentevo.memory.library import AddAction, AddResult, Library, MemoryFileError, PurgeResult
from agentevo.memory.models import CaseRecord, Counters, Lesson, LessonStatus, Provenance, Retrieved
from agentevo.memory.store import ChromaRecords, MemoryStoreError

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
