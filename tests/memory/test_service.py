"""One writer per directory: the memory service (``chroma run`` under our lock), concurrent writers, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agentevo.memory import Library, MemoryConfig, MemoryStoreError
from agentevo.memory.embedding import embed
from agentevo.memory.service import MemoryService
from agentevo.memory.store import ChromaRecords
from tests.memory.writer import lesson_for

ROOT = Path(__file__).resolve().parents[2]
N = 200


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    """Real embeddings of the writers' triggers, computed once (the writers then need no model)."""
    path = tmp_path_factory.mktemp("vectors") / "vectors.npy"
    np.save(path, embed([lesson_for(i).trigger for i in range(N)]))
    return path


def writer(url: str, vectors: Path, first: int, count: int, batch: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory.writer", url, str(vectors), str(first), str(count), str(batch)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def all_found_by_vector_search(records: ChromaRecords, ids: list[str]) -> list[str]:
    """The ids whose own vector does not find them first (rows Chroma lost from its index)."""
    stored = records.vectors(ids)
    return [i for i in ids if records.nearest(stored[i], 1)[0][0].id != i]


def test_four_concurrent_writers_lose_no_row(tmp_path, vectors):
    with MemoryService(tmp_path / "memory") as service:
        procs = [writer(service.url, vectors, w * 50, 50, 5) for w in range(4)]
        outputs = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-2000:] for _, err in outputs]
        acked = [line.split()[1] for out, _ in outputs for line in out.splitlines()]
        assert len(acked) == N
        with Library.open(MemoryConfig(), default_path=tmp_path / "memory") as library:  # finds the service
            assert library.records.where == service.url
            assert library.records.count() == N
            assert all_found_by_vector_search(library.records, acked) == []


def test_the_directory_has_one_owner_while_served(tmp_path):
    with MemoryService(tmp_path / "memory"):
        with pytest.raises(MemoryStoreError, match="open in another process"):
            ChromaRecords.open_local(tmp_path / "memory")
        with pytest.raises(MemoryStoreError, match="open in another process"):
            MemoryService(tmp_path / "memory").start()
    ChromaRecords.open_local(tmp_path / "memory").close()  # released at stop


def test_restart_and_kill_mid_write_lose_nothing_acknowledged(tmp_path, vectors):
    path = tmp_path / "memory"
    with MemoryService(path) as service:
        proc = writer(service.url, vectors, 0, N, 2)
        acked: list[str] = []
        deadline = time.monotonic() + 120
        while len(acked) < 60 and time.monotonic() < deadline:  # kill the server while the writer is busy
            acked.append(proc.stdout.readline().split()[1])
        os.killpg(service.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        acked += [line.split()[1] for line in out.splitlines()]
        assert proc.returncode != 0 and 60 <= len(acked) < N  # the writer saw the server die
    with MemoryService(path) as service:  # restarted on the same directory
        records = ChromaRecords.connect(service.url)
        assert records.count() >= len(acked)
        assert len(records.get_lessons(acked)) == len(acked)
        assert all_found_by_vector_search(records, acked) == []
        records.put_lessons([lesson_for(N - 1)], np.load(vectors)[[N - 1]])  # and it takes writes again
    with MemoryService(path) as service:  # a clean stop and start
        records = ChromaRecords.connect(service.url)
        assert records.get_lessons(["lesson-00199"])[0].lesson == "advice number 199"
        assert all_found_by_vector_search(records, acked + ["lesson-00199"]) == []
