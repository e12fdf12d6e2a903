"""End to end: ``agentevo run`` of the easiest built-in tasks with the seed agent, one backbone after another.

    .venv/bin/python bench/e2e.py [--backbones llamacpp,vllm,local] [--limit 6] [--parallel 2] [--max-steps N]
                                  [--json-out PATH]

Each backbone gets the same command (``agentevo run --suite builtin --split all --limit N --parallel P``: the
suite's natural order starts with its easiest tasks), the same budgets and a fresh archives folder; the wall time
counts everything a user waits for: the CLI starting, the backbone starting, the episodes, the evaluation. Before
llama.cpp, ``auto`` picked vLLM for a run with parallel episodes (``local`` for one at a time), so the speedup is
given against both.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from stats import write_report

from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder


def run_once(backbone: str, limit: int, parallel: int, max_steps: int | None) -> dict:
    """One ``agentevo run`` on ``backbone``: its wall time and what its rows say."""
    with tempfile.TemporaryDirectory(prefix=f"bench-e2e-{backbone}-") as folder:
        env = {**os.environ, "AGENTEVO_ARCHIVES_DIR": folder}
        cmd = [sys.executable, "-m", "agentevo", "run", "--suite", "builtin", "--split", "all",
               "--limit", str(limit), "--parallel", str(parallel), "--backbone", backbone,
               *(["--max-steps", str(max_steps)] if max_steps else [])]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"agentevo run on {backbone} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        (db,) = Path(folder).glob("*/results.sqlite")
        with sqlite3.connect(db) as conn:
            episodes, passed, tokens = conn.execute(
                "select count(*), sum(passed), sum(tokens) from results"
            ).fetchone()
        calls = TrajectoryRecorder(db.parent).read()
    return {
        "backbone": backbone, "wall_s": round(wall, 1), "episodes": episodes, "passed": passed, "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1), **call_summary(calls),
    }  # fmt: skip


def call_summary(calls: list[CallRecord]) -> dict:
    """Where the model's time went: its calls, their summed latency and their prompt and completion tokens."""
    return {
        "calls": len(calls),
        "llm_call_s": round(sum(c.latency_ms for c in calls) / 1000, 1),
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "completion_tokens": sum(c.completion_tokens for c in calls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="llamacpp,vllm,local")
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--max-steps", type=int, help="model calls per episode (default: the agent's)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = [run_once(name, args.limit, args.parallel, args.max_steps) for name in args.backbones.split(",")]
    fast = next((r for r in runs if r["backbone"] == "llamacpp"), None)
    for run in runs:
        run["llamacpp_speedup"] = round(run["wall_s"] / fast["wall_s"], 2) if fast else None
    report = {
        "limit": args.limit, "parallel": args.parallel, "max_steps": args.max_steps, "cores": os.cpu_count(), "load_before": load_before,
        "load_after": os.getloadavg(), "runs": runs,
    }  # fmt: skip
    steps = f", {args.max_steps} steps" if args.max_steps else ""
    table = Table(title=f"agentevo run, {args.limit} easiest built-in tasks, parallel {args.parallel}{steps}")
    columns = ("backbone", "wall s", "episodes", "passed", "calls", "LLM call s", "prompt tok", "completion tok",
               "llamacpp is faster by")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "backbone" else "right")
    for r in runs:
        table.add_row(
            r["backbone"], str(r["wall_s"]), str(r["episodes"]), str(r["passed"]), str(r["calls"]),
            str(r["llm_call_s"]), str(r["prompt_tokens"]), str(r["completion_tokens"]),
            f"{r['llamacpp_speedup']}x" if r["llamacpp_speedup"] else "",
        )  # fmt: skip
    Console().print(table)
    write_report(report, "e2e", args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
