"""Benchmark: what k answers cost against one, on llama.cpp's parallel slots (the seed's direct strategy).

Run ``.venv/bin/python bench/sampling.py [--tasks N] [--k 4] [--slots 4]``. For N ladder train tasks (round-robin over
levels and templates, as ``bench/ladder.py`` samples them) it sends the seed's direct request (``direct_messages``,
its stop at the closing fence) once greedy, then k times at once at temperature 0.7 with seeds 0..k-1 (what the agent
sends through the gateway), to a llama-server of its own with ``--slots`` slots (``--threads 1`` on a busy machine:
llama.cpp's threads wait for each other at every step, and under contention two threads ran 12-30x slower than one). Prints the wall time per task of
each, their ratio, and tokens per second; writes ``bench/results/sampling-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ladder import sample  # bench/ is sys.path[0] when run as a script
from stats import write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentevo.agents.seed.direct import STOP, direct_messages
from agentevo.agents.seed.genome import Genome
from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LlamaCppBackboneConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.memory.service import free_port
from agentevo.tasks.suites import load_suite


def batch(server: LlamaCppServer, messages: list, k: int, temperature: float) -> tuple[float, int]:
    """Seconds for ``k`` requests sent at once, and the completion tokens they made."""
    chat = server.chat_model(EMBEDDED_MODEL_NAME, max_tokens=512, temperature=temperature)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=k) as pool:
        replies = list(pool.map(lambda i: chat.invoke(messages, stop=STOP, seed=i), range(k)))
    return time.perf_counter() - started, sum(r.usage_metadata["output_tokens"] for r in replies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, help="llama-server's threads (default: all cores; 1 on a busy machine)"
    )
    args = parser.parse_args()
    levels = sample(load_suite("ladder", split="train"), None)
    tasks = [
        t
        for rank in range(max(map(len, levels.values())))
        for lv in sorted(levels)
        for t in levels[lv][rank : rank + 1]
    ]  # one per level in turn
    config = LlamaCppBackboneConfig(
        port=free_port(), parallel=args.slots, threads=args.threads, speculative="none"
    )
    server = LlamaCppServer(config, EMBEDDED_MODEL_NAME, AgentevoConfig().cache_dir, log=print)
    server.start()
    rows = []
    try:
        for task in tasks[: args.tasks]:
            messages = direct_messages(task.public_view(), Genome(), None)
            one, one_tokens = batch(server, messages, 1, 0.0)
            many, many_tokens = batch(server, messages, args.k, 0.7)
            rows.append(
                {"task": task.id, "k1_s": one, "k1_tokens": one_tokens, "k_s": many, "k_tokens": many_tokens}
            )
            print(
                f"{task.id}: k=1 {one:.2f} s ({one_tokens} tok), k={args.k} {many:.2f} s ({many_tokens} tok)"
            )
    finally:
        server.stop()
    k1, kk = (statistics.median(r[key] for r in rows) for key in ("k1_s", "k_s"))
    ratio = statistics.median(r["k_s"] / r["k1_s"] for r in rows)
    rate = sum(r["k_tokens"] for r in rows) / sum(r["k_s"] for r in rows)
    print(
        f"median per task: k=1 {k1:.2f} s, k={args.k} {kk:.2f} s; k/1 ratio median {ratio:.2f}; {rate:.1f} tok/s at k"
    )
    summary = {
        "tasks": len(rows),
        "k": args.k,
        "slots": args.slots,
        "k1_median_s": k1,
        "k_median_s": kk,
        "ratio": ratio,
    }
    write_report({"summary": summary, "rows": rows}, "sampling")


if __name__ == "__main__":
    main()
