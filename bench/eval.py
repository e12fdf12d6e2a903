"""Episodes per minute, evaluator throughput, and the framework's share of episode wall time.

    .venv/bin/python bench/eval.py [--quick] [--json-out PATH] [--evaluator-only] [--baseline-ref REF]

Episodes run in isolated mode exactly as ``agentevo run`` does (seed agent in a sandbox, LLM through
the gateway, hidden tests in a fresh sandbox), once with a scripted model (the framework alone) and
once with the embedded model. Each episode's wall time is split into:

* LLM: the gateway's recorded latency of the episode's calls (queueing for the model included);
* tools: the agent's own ``act`` node durations (its bash/file commands inside the sandbox);
* framework: everything else (sandbox start, copying files, starting the agent, the gateway hop).

The evaluator is measured on its own: canonical solutions of the built-in suite at 1, 2 and 4 threads.
With ``--baseline-ref REF`` the evaluator of git revision REF (e.g. the commit before a change to it) is
measured too, in a temporary worktree, in the same run, so the two figures share the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
# --code-root ROOT imports agentevo from another checkout (the baseline's worktree); it must act before the imports.
CODE_ROOT = next((sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--code-root"), str(REPO))
sys.path.insert(0, CODE_ROOT)

from stats import write_report

# Only the evaluator and the suites at the top: the episode parts import inside their functions, so the evaluator of
# an older revision (--baseline-ref, run with --evaluator-only) is measured even where the rest of its API differs.
from agentevo.evaluate import Evaluator
from agentevo.tasks import load_suite

if TYPE_CHECKING:
    from agentevo.agents.episode import EpisodeBudget

ACT_LINE = re.compile(r"^\[act\] .* seconds=([0-9.]+)$", re.MULTILINE)
SCRIPTED_REPLIES = ["```python\ndef solve(*args):\n    return None\n```", "done"]
TARGET_OVERHEAD_SHARE = 0.05


def run_episodes(backend, tasks, parallel: int, budget: EpisodeBudget, evaluator: Evaluator) -> dict:
    """Run ``tasks`` as isolated episodes, ``parallel`` at once, and split their wall time."""
    from agentevo.agents import run_isolated, seed_agent_dir
    from agentevo.gateway import Gateway, TrajectoryRecorder
    from agentevo.orchestrate import score_episode

    with (
        tempfile.TemporaryDirectory() as tmp,
        Gateway(backend, run_dir=Path(tmp), run_id="bench-eval") as gateway,
    ):

        def one(task):
            outcome = run_isolated(
                task,
                seed_agent_dir(),
                gateway,
                budget=budget,
                episode_id=task.id.replace("/", "-"),
            )
            row = score_episode(task, outcome, evaluator, run_id="bench", agent_id="seed", attempt=0)
            return outcome, row

        started = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            done = list(pool.map(one, tasks))
        wall = time.perf_counter() - started
        llm_by_episode: dict[str, float] = {}
        for record in TrajectoryRecorder(Path(tmp)).read():
            llm_by_episode[record.episode_id] = (
                llm_by_episode.get(record.episode_id, 0.0) + record.latency_ms / 1000
            )
    episode_s = sum(o.seconds for o, _ in done)
    llm_s = sum(llm_by_episode.values())
    tools_s = sum(float(x) for o, _ in done for x in ACT_LINE.findall(o.log_tail))
    eval_s = sum(r.seconds - o.seconds for o, r in done)
    overhead_s = episode_s - llm_s - tools_s
    return {
        "parallel": parallel,
        "episodes": len(done),
        "wall_s": wall,
        "episodes_per_min": 60 * len(done) / wall,
        "passed": sum(r.passed for _, r in done),
        "episode_s": episode_s,
        "llm_s": llm_s,
        "tools_s": tools_s,
        "framework_s": overhead_s,
        "eval_s": eval_s,
        "framework_s_per_episode": overhead_s / len(done),
        "llm_share": llm_s / episode_s,
        "tools_share": tools_s / episode_s,
        "framework_share": overhead_s / episode_s,
    }


def evaluator_throughput(tasks, parallel: int) -> dict:
    evaluator = Evaluator()
    times: list[float] = []

    def one(task):
        t0 = time.perf_counter()
        result = evaluator.evaluate_solution(task, task.canonical_solution)
        times.append(time.perf_counter() - t0)
        return result.passed

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        passed = sum(pool.map(one, tasks))
    wall = time.perf_counter() - started
    return {
        "parallel": parallel,
        "evaluations": len(tasks),
        "passed": passed,
        "wall_s": wall,
        "evals_per_min": 60 * len(tasks) / wall,
        "p50_s": statistics.median(times),
    }


def baseline_throughput(ref: str, quick: bool) -> list[dict]:
    """The evaluator of git revision ``ref``, measured by this script in a temporary worktree."""
    with tempfile.TemporaryDirectory() as tmp:
        tree, out = Path(tmp) / "baseline", Path(tmp) / "baseline.json"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
        try:
            command = [
                sys.executable,
                __file__,
                "--evaluator-only",
                "--code-root",
                str(tree),
                "--json-out",
                str(out),
            ]
            done = subprocess.run(command + (["--quick"] if quick else []), capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(
                    f"the evaluator of {ref} could not be measured (exit {done.returncode}); this script runs "
                    f"its own code against that tree, so the revision must still have the APIs it calls:\n"
                    f"{done.stderr[-2000:]}"
                )
            return json.loads(out.read_text())["evaluator"]
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--evaluator-only", action="store_true", help="skip the episodes; measure the evaluator"
    )
    parser.add_argument("--baseline-ref", help="also measure the evaluator of this git revision, same run")
    parser.add_argument("--code-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    suite = load_suite("builtin")
    report: dict = {
        "mode": "quick" if args.quick else "full",
        "load_start": os.getloadavg(),
        "scripted": [],
        "embedded": [],
        "evaluator": [],
    }
    if not args.evaluator_only:
        run_all_episodes(report, suite, args.quick)
    eval_tasks = suite if not args.quick else suite[:12]
    for parallel in (1, 2, 4):
        report["evaluator"].append(evaluator_throughput(eval_tasks, parallel))
    if args.baseline_ref:
        report["baseline"] = {
            "ref": args.baseline_ref,
            "evaluator": baseline_throughput(args.baseline_ref, args.quick),
        }
    report["load_end"] = os.getloadavg()
    print_tables(report)
    write_report(report, "eval", args.json_out)


def run_all_episodes(report: dict, suite, quick: bool) -> None:
    """Episodes with the scripted and the embedded model, and the framework-share target."""
    from agentevo.agents.episode import EpisodeBudget
    from agentevo.config import AgentevoConfig
    from agentevo.gateway import ChatModelBackend
    from agentevo.llm.scripted import ScriptedChatModel
    from agentevo.serving.backbone import open_backend

    evaluator = Evaluator()

    scripted_tasks = suite[: 4 if quick else 8]
    for parallel in (1, 2, 4):
        backend = ChatModelBackend(ScriptedChatModel(replies=SCRIPTED_REPLIES), "scripted")
        report["scripted"].append(
            run_episodes(backend, scripted_tasks, parallel, EpisodeBudget(max_steps=2), evaluator)
        )

    embedded_tasks = suite[: 2 if quick else 4]
    with open_backend(AgentevoConfig()) as backend:
        for parallel in (1,) if quick else (1, 2):
            report["embedded"].append(
                run_episodes(backend, embedded_tasks, parallel, EpisodeBudget(max_steps=3), evaluator)
            )
    embedded_share = max(r["framework_share"] for r in report["embedded"])
    report["target"] = {
        "framework_share_below": TARGET_OVERHEAD_SHARE,
        "embedded_worst_share": embedded_share,
        "met": embedded_share < TARGET_OVERHEAD_SHARE,
    }


def print_tables(report: dict) -> None:
    console = Console()
    table = Table(
        "model",
        "parallel",
        "episodes",
        "wall s",
        "episodes/min",
        "LLM",
        "tools",
        "framework",
        "framework s/episode",
        title="episodes (isolated mode, seed agent, built-in suite)",
    )
    for model in ("scripted", "embedded"):
        for r in report[model]:
            table.add_row(
                model,
                str(r["parallel"]),
                str(r["episodes"]),
                f"{r['wall_s']:.1f}",
                f"{r['episodes_per_min']:.1f}",
                f"{r['llm_share']:.1%}",
                f"{r['tools_share']:.1%}",
                f"{r['framework_share']:.1%}",
                f"{r['framework_s_per_episode']:.2f}",
            )
    if report["scripted"]:
        console.print(table)
    table = Table(
        "code",
        "parallel",
        "evaluations",
        "passed",
        "wall s",
        "evals/min",
        "p50 s",
        title="evaluator (canonical built-in solutions)",
    )
    runs = [("this checkout", report["evaluator"])]
    if "baseline" in report:
        runs.append((report["baseline"]["ref"], report["baseline"]["evaluator"]))
    for code, rows in runs:
        for r in rows:
            table.add_row(
                code,
                str(r["parallel"]),
                str(r["evaluations"]),
                str(r["passed"]),
                f"{r['wall_s']:.1f}",
                f"{r['evals_per_min']:.1f}",
                f"{r['p50_s']:.2f}",
            )
    console.print(table)
    if "target" not in report:
        return
    t = report["target"]
    console.print(
        f"target: framework share < {t['framework_share_below']:.0%} of episode wall time with the embedded model: "
        f"worst {t['embedded_worst_share']:.1%} -> {'met' if t['met'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
