"""Benchmark: the experience library on Chroma against brute-force numpy over the very same vectors.

Run ``.venv/bin/python bench/memory.py [--quick] [--json-out PATH]``. Measures, in one run:

* embedding throughput of the offline all-MiniLM-L6-v2 (sentences/s, batches of 64);
* insert throughput (lessons/s, batches of 500, through ``ChromaRecords.put_lessons``) at 1k, 10k and 100k
  lessons (1k and 10k with ``--quick``);
* retrieval latency p50/p95: Chroma's HNSW over-fetch (k=3 x overfetch 8 = 24 candidates) plus the re-rank,
  against an exact numpy dot product + argpartition over the same matrix; and HNSW's recall@24 against the
  exact answer.

Vectors at these scales are synthetic, as in a real library's shape: unit vectors around 200 topic centres
(clusters of triggers), queries are perturbed stored vectors. Embedding them for real would take hours here.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from stats import percentile, write_report  # bench/ is sys.path[0] when run as a script

from agentevo.memory.config import MemoryConfig
from agentevo.memory.embedding import DIMENSION, embed
from agentevo.memory.models import Lesson, Provenance
from agentevo.memory.rank import rank
from agentevo.memory.store import ChromaRecords

SCALES = [1_000, 10_000, 100_000]
QUERIES = 200
CENTRES = 200
BATCH = 500
log = Console(stderr=True)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def library_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = unit(rng.standard_normal((CENTRES, DIMENSION)))
    return unit(centres[rng.integers(0, CENTRES, n)] + 0.35 * rng.standard_normal((n, DIMENSION)) / 4)


def lessons(n: int) -> list[Lesson]:
    source = [Provenance(source="bench")]
    return [
        Lesson(id=f"l{i}", trigger=f"situation {i} of the benchmark", lesson=f"advice {i}", provenance=source)
        for i in range(n)
    ]


def embedding_throughput() -> dict:
    sentences = [f"the task number {i} asks for a function that parses input line {i}" for i in range(512)]
    embed(sentences[:8])  # load the model first
    t0 = time.perf_counter()
    embed(sentences)
    seconds = time.perf_counter() - t0
    return {"sentences": len(sentences), "seconds": seconds, "per_second": len(sentences) / seconds}


def scale(n: int, rng: np.random.Generator, config: MemoryConfig) -> dict:
    vectors = library_vectors(n, rng)
    items = lessons(n)
    with tempfile.TemporaryDirectory() as tmp, ChromaRecords.open_local(Path(tmp) / "memory") as records:
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            records.put_lessons(items[start : start + BATCH], vectors[start : start + BATCH])
        insert_s = time.perf_counter() - t0
        log.print(f"{n}: inserted in {insert_s:.1f} s")
        picks = rng.integers(0, n, QUERIES)
        queries = unit(vectors[picks] + 0.05 * rng.standard_normal((QUERIES, DIMENSION)))
        wanted = config.top_k * config.overfetch
        chroma_ms, numpy_ms, recall = [], [], []
        for q in queries:
            t0 = time.perf_counter()
            found = records.nearest(q, wanted)
            rank("benchmark situation", found, config.weights, config.half_life_days, config.top_k)
            chroma_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            scores = vectors @ q
            top = np.argpartition(-scores, wanted)[:wanted]
            top = top[np.argsort(-scores[top])]
            numpy_ms.append((time.perf_counter() - t0) * 1000)
            exact = {f"l{i}" for i in top}
            recall.append(len(exact & {x.id for x, _ in found}) / wanted)
    return {
        "lessons": n,
        "insert_seconds": insert_s,
        "insert_per_second": n / insert_s,
        "chroma_p50_ms": percentile(chroma_ms, 0.5),
        "chroma_p95_ms": percentile(chroma_ms, 0.95),
        "numpy_p50_ms": percentile(numpy_ms, 0.5),
        "numpy_p95_ms": percentile(numpy_ms, 0.95),
        "recall_at_candidates": float(np.mean(recall)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k lessons only")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    config = MemoryConfig()
    report = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "candidates_per_query": config.top_k * config.overfetch,
        "queries_per_scale": QUERIES,
        "embedding": embedding_throughput(),
        "scales": [scale(n, rng, config) for n in (SCALES[:2] if args.quick else SCALES)],
    }
    table = Table("lessons", "insert/s", "chroma p50", "chroma p95", "numpy p50", "numpy p95", "recall")
    for s in report["scales"]:
        table.add_row(
            f"{s['lessons']:,}", f"{s['insert_per_second']:.0f}", f"{s['chroma_p50_ms']:.2f} ms",
            f"{s['chroma_p95_ms']:.2f} ms", f"{s['numpy_p50_ms']:.2f} ms", f"{s['numpy_p95_ms']:.2f} ms",
            f"{s['recall_at_candidates']:.3f}",
        )  # fmt: skip
    log.print(table)
    log.print(f"embedding: {report['embedding']['per_second']:.0f} sentences/s (all-MiniLM-L6-v2, CPU)")
    write_report(report, "memory", args.json_out)


if __name__ == "__main__":
    main()
