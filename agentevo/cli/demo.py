"""``agentevo demo``: the main job on the embedded defaults.

For now it proves the sandbox end to end: it builds the image if needed and runs a handful of small
Python programs, each in its own warm-pooled hardened sandbox, checking each one's answer.
Later issues turn this into an evolution run.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from pydantic import BaseModel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentevo.cli.common import clear_errors, config, console
from agentevo.runs import RunDir
from agentevo.sandbox import SandboxPool, images


class DemoJob(BaseModel):
    name: str
    program: str
    expected: str


class DemoResult(BaseModel):
    name: str
    passed: bool
    exit_code: int
    seconds: float
    output: str


JOBS = [
    DemoJob(name="arithmetic", program="print(sum(range(1, 101)))", expected="5050"),
    DemoJob(name="primes", program="print(sum(n for n in range(2, 2000) if all(n % d for d in range(2, int(n**.5) + 1))))", expected="277050"),
    DemoJob(name="fibonacci", program="a, b = 0, 1\nfor _ in range(90): a, b = b, a + b\nprint(a)", expected="2880067194370816120"),
    DemoJob(name="sorting", program="import random\nrandom.seed(7)\nxs = random.sample(range(10**6), 10**5)\nprint(sorted(xs) == sorted(xs, reverse=True)[::-1])", expected="True"),
    DemoJob(name="langgraph-import", program="import langgraph, langchain_core, openai, pydantic\nprint('ok')", expected="ok"),
    DemoJob(name="no-network", program="import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    print('isolated')", expected="isolated"),
]


def _run(pool: SandboxPool, job: DemoJob) -> DemoResult:
    with pool.acquire() as sb:
        sb.write_file("/workspace/job.py", job.program)
        result = sb.exec("python job.py", timeout=60)
    return DemoResult(
        name=job.name,
        passed=result.ok and result.output.strip() == job.expected,
        exit_code=result.exit_code,
        seconds=result.elapsed,
        output=result.output.strip()[-200:],
    )


def demo() -> None:
    """Run the main job on the embedded defaults and print where its results are."""
    settings = config()
    with clear_errors():
        with console.status("checking the sandbox image (first build takes ~2 min)"):
            images.ensure_image(settings.sandbox.image, log=lambda line: console.print(line, highlight=False))
        run = RunDir(settings.archives_dir)
        run.describe(command="agentevo demo", started=time.time(), config=settings.model_dump(mode="json"))
        results: list[DemoResult] = []
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with SandboxPool(settings.sandbox, size=2, run_id=run.run_id) as pool, Progress(*columns, console=console) as bar:
            task = bar.add_task("sandboxed jobs", total=len(JOBS))
            with ThreadPoolExecutor(max_workers=2) as workers:
                for future in as_completed([workers.submit(_run, pool, job) for job in JOBS]):
                    result = future.result()
                    results.append(result)
                    run.append(result)
                    passed = sum(r.passed for r in results)
                    bar.update(task, advance=1, description=f"sandboxed jobs ({passed}/{len(results)} passed)")
        run.describe(finished=time.time(), passed=sum(r.passed for r in results), total=len(results))
    table = Table("job", "passed", "exit", "seconds", "output")
    for r in sorted(results, key=lambda r: r.name):
        table.add_row(r.name, "yes" if r.passed else "[red]no[/]", str(r.exit_code), f"{r.seconds:.2f}", r.output[:40])
    console.print(table)
    console.print(f"{sum(r.passed for r in results)}/{len(results)} passed; results written to {run.results_path}")
