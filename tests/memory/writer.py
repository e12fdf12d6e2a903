"""A memory writer process for the service tests: ``python -m tests.memory.writer URL VECTORS FIRST COUNT BATCH``.

Writes lessons FIRST..FIRST+COUNT-1 through the memory server at URL, in batches, with the precomputed real
embeddings in VECTORS (.npy), and prints ``acked <id>`` for every lesson the server acknowledged.
"""

from __future__ import annotations

import sys

import numpy as np

from agentevo.memory.models import Lesson, Provenance
from agentevo.memory.store import ChromaRecords


def lesson_for(i: int) -> Lesson:
    return Lesson(
        id=f"lesson-{i:05d}",
        trigger=f"situation number {i}: the task mentions item {i}",
        lesson=f"advice number {i}",
        provenance=[Provenance(source=f"writer-{i % 4}")],
    )


def main() -> None:
    url, vectors_file, first, count, batch = sys.argv[1:6]
    first, count, batch = int(first), int(count), int(batch)
    vectors = np.load(vectors_file)
    records = ChromaRecords.connect(url)
    for start in range(first, first + count, batch):
        ids = range(start, min(start + batch, first + count))
        records.put_lessons([lesson_for(i) for i in ids], vectors[list(ids)])
        for i in ids:
            print(f"acked lesson-{i:05d}", flush=True)


if __name__ == "__main__":
    main()
