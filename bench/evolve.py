"""The evolution loop's scheduling: the asynchronous scheduler against a generation-synchronous one (DGM's
barrier), at K = 2, 4 and 8 workers, in the same run; and the loop's own overhead per node.

    .venv/bin/python bench/evolve.py [--latency 0.3] [--nodes 24] [--json-out PATH]
    .venv/bin/python bench/evolve.py --efficacy RUN_ID [--split test] [--attempts K] [--limit N] [--base-url URL]

The real loop (``agentevo.evolve.loop.Evolution``: its scheduler, policy, gates, staged evaluation, a real git
archive and SQLite result rows) runs with simulated work of a set latency: an expansion takes
``latency`` x U(0.5, 1.5) (a scripted model's meta-step), a contract check ``latency``, and each task episode
``latency`` x U(0.5, 1.5), with seeded draws so both schedulers get the same work. Stages: 3 tasks, then 6 more
for nodes scoring at least 0.5. Measured per run: nodes per minute, worker utilisation (busy worker-seconds /
(K x wall)) and the scheduler's own time per node. The overhead run has latency 0 and one worker, so its
wall time per node is everything the loop itself costs (git commits and exports, SQLite, decisions).

``--efficacy RUN_ID`` measures what an evolution run (e.g. ``make demo``'s, on the train split) bought: the seed
and the run's best node (``archive:RUN:best``) on the held-out split of the run's own suite, with the run's
configuration (step budget, memory, adapter), through ``agentevo.compare``: pass@1 with intervals, the paired
difference, an exact test and the smallest detectable gain (``docs/compare.md``). ``--base-url``/``--model`` run
both on an OpenAI-compatible endpoint instead.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import write_report

from agentevo.agents.check import CheckReport
from agentevo.agents.episode import seed_agent_dir
from agentevo.archive import Archive
from agentevo.compare import RichProgress, compare, parse_arm, print_table, summary_line
from agentevo.config import AgentevoConfig, load_config
from agentevo.config.evolve import EvolveConfig, PolicyName, SafetyMode, Stage
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.evolve.loop import Evolution, Status
from agentevo.evolve.operators import Parent, Proposal, copy_agent
from agentevo.report.extras import run_config
from agentevo.runs import EVOLVE_FILE, RESULTS_DB, RunDir
from agentevo.tasks import Task


def _draw(*key: object) -> float:
    """A seeded U(0, 1) for ``key``: the same work under either scheduler."""
    return random.Random(zlib.crc32(repr(key).encode())).random()


class SimulatedWork:
    """The executor's part (episodes, checks) and the operator, as sleeps of the set latency."""

    name = "simulated"
    model = "simulated"

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.made = 0

    def episodes(self, config, tasks, *, agent_dir, run, agent_id, budget, parallel) -> None:
        with ResultsStore(run.path / RESULTS_DB) as store:
            for task in tasks:
                time.sleep(self.latency * (0.5 + _draw(agent_id, task.id, "t")))
                passed = _draw(agent_id, task.id, "p") < 0.55
                store.add(
                    ResultRow(
                        run_id=run.run_id,
                        agent_id=agent_id,
                        task_id=task.id,
                        passed=passed,
                        score=float(passed),
                    )
                )

    def call(self, fn, *args):
        return fn(*args)

    def with_backend(self, fn, *args):
        raise AssertionError("no safety probes in this benchmark")

    def close(self) -> None:
        pass

    def check(self, path: Path) -> CheckReport:
        time.sleep(self.latency)
        return CheckReport(agent=str(path))

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        self.made += 1
        time.sleep(self.latency * (0.5 + _draw(parent.id, self.made, "e")))
        child = copy_agent(parent.folder, workdir / "child")
        (child / "notes.md").write_text(f"variant {self.made} of {parent.id}\n")
        return Proposal(folder=child, change=f"variant {self.made}")


def tasks() -> list[Task]:
    return [
        Task(id=f"sim/t{i}", suite="sim", instructions="x", files={"solution.py": ""}, tests=["assert True"])
        for i in range(9)
    ]


def one_run(workers: int, latency: float, nodes: int, generations: bool) -> Status:
    with tempfile.TemporaryDirectory() as tmp:
        config = AgentevoConfig(archives_dir=Path(tmp))
        evolve = EvolveConfig(
            policy=PolicyName.dgm, workers=workers, max_nodes=nodes, safety=SafetyMode.off, near_duplicate=None,
            stages=[Stage(name="small", tasks=3), Stage(name="large", tasks=6, threshold=0.5)],
        )  # fmt: skip
        run = RunDir(Path(tmp))
        work = SimulatedWork(latency)
        with Archive(run.path) as archive:
            archive.add(seed_agent_dir(), operator="seed", change="the seed agent")
            loop = Evolution(
                config, evolve, run, archive, tasks=tasks(), operator=work, offload=work, checker=work.check,
                generations=generations,
            )  # fmt: skip
            status = loop.run()
        shutil.rmtree(run.path, ignore_errors=True)
    return status


def measure(status: Status, workers: int) -> dict:
    return {
        "nodes": status.nodes,
        "wall_s": round(status.seconds, 2),
        "nodes_per_min": round(60 * status.nodes / status.seconds, 1),
        "utilisation": round(status.busy_seconds / (workers * status.seconds), 3),
        "scheduler_ms_per_node": round(1000 * status.scheduler_seconds / status.nodes, 1),
        "jobs": dict(status.jobs_done),
    }


def efficacy(
    run_id: str, split: str, max_steps: int | None, attempts: int, limit: int | None, endpoint: str
) -> dict:
    """The seed and the run's best node on the run's own suite, ``split`` held out, with the run's configuration
    (its step budget, memory library and adapter as they were), compared through ``agentevo.compare``."""
    settings = load_config()
    source = Path(settings.archives_dir) / run_id
    config = run_config(source, settings)
    evolve = EvolveConfig.model_validate(json.loads((source / EVOLVE_FILE).read_text())["evolve"])
    with Archive.open(source) as archive:
        seed = archive.nodes()[0].id
    same = (
        f",max_steps={max_steps or evolve.max_steps},adapter=active,memory={config.memory.enabled}{endpoint}"
    )
    arms = [parse_arm(f"seed=archive:{run_id}:{seed}{same}"), parse_arm(f"best=archive:{run_id}:best{same}")]
    console = Console(stderr=True)
    with RichProgress(console) as progress:
        result = compare(
            arms,
            suite=evolve.suite,
            split=split,
            limit=limit,
            attempts=attempts,
            config=config,
            progress=progress,
        )
    print_table(console, result)
    print(summary_line(result))
    return {"run": run_id, **result.model_dump(mode="json")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3, help="Seconds of simulated model latency.")
    parser.add_argument("--nodes", type=int, default=24, help="Node budget of each run.")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument(
        "--efficacy",
        metavar="RUN_ID",
        help="Seed vs best evolved node of this run, held out, through compare.",
    )
    parser.add_argument("--split", default="test", help="The held-out split (--efficacy).")
    parser.add_argument(
        "--max-steps", type=int, help="Model calls per episode (--efficacy; default: the run's)."
    )
    parser.add_argument("--attempts", type=int, default=1, help="Attempts per task and arm (--efficacy).")
    parser.add_argument("--limit", type=int, help="The first N tasks of the split (--efficacy).")
    parser.add_argument(
        "--base-url", help="An OpenAI-compatible endpoint instead of the run's backbone (--efficacy)."
    )
    parser.add_argument("--model", default="smollm2-135m-instruct", help="The endpoint's model (--efficacy).")
    args = parser.parse_args()
    if args.efficacy:
        endpoint = f",base_url={args.base_url},model={args.model}" if args.base_url else ""
        report = efficacy(args.efficacy, args.split, args.max_steps, args.attempts, args.limit, endpoint)
        write_report(report, "evolve-efficacy", args.json_out)
        return 0
    console = Console(stderr=True)
    report: dict = {"latency_s": args.latency, "nodes": args.nodes, "runs": []}
    for workers in (2, 4, 8):
        for mode in ("async", "generations"):
            console.print(f"K={workers} {mode} ...")
            status = one_run(workers, args.latency, args.nodes, generations=mode == "generations")
            report["runs"].append({"workers": workers, "scheduler": mode, **measure(status, workers)})
    console.print("overhead (latency 0, K=1) ...")
    overhead = one_run(1, 0.0, args.nodes, generations=False)
    report["overhead_s_per_node"] = round(overhead.seconds / overhead.nodes, 3)
    report["overhead"] = measure(overhead, 1)

    table = Table(title=f"evolve scheduling, latency {args.latency} s, {args.nodes} nodes per run")
    for column in ("K", "scheduler", "nodes/min", "utilisation", "wall s", "scheduler ms/node"):
        table.add_column(column, justify="right")
    for r in report["runs"]:
        table.add_row(
            str(r["workers"]), r["scheduler"], f"{r['nodes_per_min']}", f"{r['utilisation']:.0%}",
            f"{r['wall_s']}", f"{r['scheduler_ms_per_node']}",
        )  # fmt: skip
    Console().print(table)
    Console().print(f"loop overhead per node (latency 0, K=1): {report['overhead_s_per_node']} s")
    write_report(report, "evolve", args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
