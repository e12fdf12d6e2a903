"""Benchmark: where the embedded model sits on the ladder, prompted directly, per level.

Run ``.venv/bin/python bench/ladder.py [--split test] [--per-level N] [--json-out PATH]``. The embedded model
(llama.cpp, f16 weights) is asked for ``solution.py`` once per task, greedy, with the same request and code
extraction as ``agentevo.train.scoring.TaskScorer`` (what adapter promotion scores); the evaluator's hidden tests
judge it in a sandbox. ``--per-level N`` keeps N tasks of each level, taken round-robin over the level's
templates. Prints pass@1 per level, in-distribution and transfer apart, with counts, and writes the JSON
(``bench/results/ladder-<timestamp>.json`` by default) after each level.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table
from stats import write_report  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentevo.config import AgentevoConfig
from agentevo.evaluate.evaluator import Evaluator
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LlamaCppBackboneConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.memory.service import free_port
from agentevo.tasks.model import Task
from agentevo.tasks.spread import spread
from agentevo.tasks.suites import load_suite
from agentevo.train.scoring import TaskScorer, served_ask

MAX_TOKENS = 256  # as bench/train.py's held-out scoring


def sample(tasks: list[Task], per_level: int | None) -> dict[int, list[Task]]:
    """Per level, ``per_level`` tasks (all when None), every template of the level once before any twice."""
    levels: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        levels[task.metadata["level"]].append(task)
    return {level: spread(chosen, per_level or len(chosen)) for level, chosen in sorted(levels.items())}


def per_level(tasks: list[Task], passed: dict[str, bool]) -> list[dict]:
    """Passed and total per level, and apart for in-distribution and transfer templates."""
    rows = []
    for level in sorted({t.metadata["level"] for t in tasks}):
        row: dict = {"level": level}
        for kind, transfer in (("in_distribution", False), ("transfer", True)):
            chosen = [t for t in tasks if t.metadata["level"] == level and t.metadata["transfer"] is transfer]
            row[kind] = {"passed": sum(passed[t.id] for t in chosen), "total": len(chosen)}
        row["all"] = {k: row["in_distribution"][k] + row["transfer"][k] for k in ("passed", "total")}
        rows.append(row)
    return rows


def show(rows: list[dict]) -> None:
    table = Table(title="Ladder, embedded model prompted directly (greedy): pass@1 per level")
    for column in ("level", "all", "in-distribution", "transfer"):
        table.add_column(column, justify="right")
    for row in rows:
        cells = [f"{row[k]['passed']}/{row[k]['total']}" for k in ("all", "in_distribution", "transfer")]
        table.add_row(str(row["level"]), *cells)
    Console().print(table)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="test", help="train | validation | test (default test).")
    parser.add_argument("--per-level", type=int, default=None, help="Only the first N tasks of each level.")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    settings = AgentevoConfig()
    levels = sample(load_suite("ladder", split=args.split), args.per_level)
    config = LlamaCppBackboneConfig(port=free_port(), parallel=1, ctx_per_slot=2048, weights="f16")
    started, passed, tasks = time.monotonic(), {}, []
    report = {"suite": "ladder", "split": args.split, "per_level": args.per_level, "model": EMBEDDED_MODEL_NAME,
              "prompting": "direct, greedy", "max_tokens": MAX_TOKENS}  # fmt: skip
    with LlamaCppServer(config, EMBEDDED_MODEL_NAME, settings.cache_dir) as server:
        scorer = partial(TaskScorer, served_ask(server, MAX_TOKENS), evaluator=Evaluator(settings.sandbox))
        for level, chosen in levels.items():  # level by level, so a long run shows (and keeps) what it has
            passed |= scorer(chosen)(EMBEDDED_MODEL_NAME).per_task
            tasks += chosen
            print(f"level {level}: {sum(passed[t.id] for t in chosen)}/{len(chosen)} passed", flush=True)
            report |= {"levels": per_level(tasks, passed), "wall_s": round(time.monotonic() - started, 1)}
            write_report({**report, "per_task": passed}, "ladder", args.json_out)
    show(report["levels"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
