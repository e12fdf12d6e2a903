"""Memory fixtures: a library on real Chroma (a temporary persist directory) with the real embedding model."""

from __future__ import annotations

import pytest

from agentevo.memory import Lesson, Library, MemoryConfig, Provenance
from agentevo.memory.store import ChromaRecords


def lesson(trigger: str, advice: str, source: str = "run-a", **extra) -> Lesson:
    return Lesson(
        trigger=trigger, lesson=advice, provenance=[Provenance(source=source, run_id=source)], **extra
    )


@pytest.fixture
def memory_config() -> MemoryConfig:
    return MemoryConfig(cap=50)


@pytest.fixture
def library(tmp_path, memory_config):
    with Library(ChromaRecords.open_local(tmp_path / "memory"), memory_config) as lib:
        yield lib
