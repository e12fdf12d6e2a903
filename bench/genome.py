"""Benchmark: does evolving the genome find a better agent on the embedded model? (issue 23's efficacy target)

Run ``.venv/bin/python bench/genome.py [--train-tasks 20] [--minutes 60] [--held-out 239]`` (``--run RUN`` skips the
evolution and measures an earlier run). It evolves the seed on ladder train tasks spread over the levels (one stage:
every node scored on the same tasks) with mutate, crossover and bootstrap behind their bandit, for the stated
wall-clock budget; prints the nodes and the valid-child rate per operator (children admitted / expansions, failed
expansions included); then ``agentevo compare`` of the best node against the seed on ``--held-out`` ladder test
tasks spread over the levels (239: all of them), with pass@1 apart for held-out instances and held-out templates
(transfer), and optionally on MBPP's test split (``--mbpp PATH``). Writes ``bench/results/genome-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from stats import write_report  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console

from agentevo.archive import Archive
from agentevo.cli.demo import OPERATORS, STAGE, print_nodes
from agentevo.cli.evolve import run_evolution
from agentevo.compare import RichProgress, compare, parse_arm, summary_line
from agentevo.compare.report import print_table
from agentevo.config import load_config
from agentevo.config.evolve import PolicyName, SafetyMode, Stage
from agentevo.evaluate.results import ResultsStore
from agentevo.runs import RESULTS_DB
from agentevo.tasks import load_suite
from agentevo.tasks.spread import spread

console = Console(stderr=True)
FAILED = re.compile(r"expand n\d+ failed: MutationFailed: (\w+): ")


def evolve(train_tasks: int, minutes: float, max_steps: int) -> str:
    """A new evolution run on ``train_tasks`` spread ladder train tasks; its id."""
    settings = load_config()
    wanted = settings.evolve.model_copy(
        update={
            "policy": PolicyName.dgm, "operators": OPERATORS, "suite": "ladder", "split": "train",
            "stages": [Stage(name=STAGE, tasks=train_tasks)], "workers": 2, "episode_parallel": 2, "max_steps": max_steps,
            "safety": SafetyMode.off,
        }
    )  # fmt: skip
    chosen = spread(load_suite("ladder", split="train"), train_tasks)
    status = run_evolution(
        settings, wanted, None, {"max_nodes": 200, "max_seconds": minutes * 60}, tasks=chosen
    )
    return status.run_id


def valid_children(run_dir: Path) -> dict[str, dict[str, int]]:
    """Per operator: expansions (children made + expansions that made none) and children admitted."""
    with Archive.open(run_dir) as archive:
        children = [n for n in archive.nodes() if n.parent]
    made = Counter(n.operator for n in children)
    admitted = Counter(n.operator for n in children if n.gate and n.gate.passed)
    log = run_dir / "evolve_errors.log"
    failed = Counter(FAILED.findall(log.read_text())) if log.is_file() else Counter()
    return {
        op: {"expansions": made[op] + failed[op], "children": made[op], "admitted": admitted[op]}
        for op in sorted({*made, *failed})
    }


def held_out(run_id: str, suite: str, limit: int | None) -> dict:
    """``agentevo compare`` of the run's best node against the seed on the suite's test split."""
    settings = load_config()
    arms = [parse_arm("seed=seed"), parse_arm(f"best=archive:{run_id}:best")]
    with RichProgress(console) as progress:
        result = compare(
            arms, suite=suite, split="test", limit=limit, spread=limit is not None, config=settings, parallel=2,
            progress=progress,
        )  # fmt: skip
    print_table(console, result)
    console.print(summary_line(result), highlight=False)
    report = result.model_dump(mode="json")
    if suite == "ladder":
        report["by_kind"] = by_kind(result.run_dir, result.run_id)
    return report


def by_kind(run_dir: Path, run_id: str) -> dict[str, dict[str, list[int]]]:
    """Per arm, [passed, tasks] on held-out instances and on held-out templates (transfer)."""
    transfer = {t.id: t.metadata["transfer"] for t in load_suite("ladder", split="test")}
    out: dict[str, dict[str, list[int]]] = {}
    with ResultsStore(run_dir / RESULTS_DB) as store:
        for row in store.rows(run_id):
            kind = "transfer" if transfer[row.task_id] else "instances"
            cell = out.setdefault(row.agent_id, {}).setdefault(kind, [0, 0])
            cell[0] += int(row.passed)
            cell[1] += 1
    console.print(f"held-out instances vs templates (passed/tasks): {out}", highlight=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-tasks", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument(
        "--max-steps", type=int, default=9, help="Model calls per episode (k samples are k calls)."
    )
    parser.add_argument("--held-out", type=int, default=239)
    parser.add_argument("--run", help="Measure this earlier evolution run instead of evolving.")
    parser.add_argument("--mbpp", type=Path, help="Also compare on MBPP's test split (sanitized-mbpp.json).")
    args = parser.parse_args()
    run_id = args.run or evolve(args.train_tasks, args.minutes, args.max_steps)
    run_dir = load_config().archives_dir / run_id
    print_nodes(run_dir, run_id)
    report = {"run": run_id, "minutes": args.minutes, "train_tasks": args.train_tasks}
    report["valid_children"] = valid_children(run_dir)
    console.print(f"valid children per operator: {report['valid_children']}", highlight=False)
    with Archive.open(run_dir) as archive:
        report["nodes"] = [n.model_dump(mode="json") for n in archive.nodes()]
    report["ladder"] = held_out(run_id, "ladder", args.held_out)
    if args.mbpp:
        report["mbpp"] = held_out(run_id, f"mbpp:{args.mbpp}", None)
    write_report(report, "genome")


if __name__ == "__main__":
    main()
