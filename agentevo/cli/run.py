"""``agentevo run`` (an agent over a suite) and ``agentevo results`` (a run's table)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentevo.cli.common import (
    INTERRUPTED,
    clear_errors,
    config,
    console,
    interruptible,
    note,
    stop_on_sigterm,
    with_backbone,
)
from agentevo.files import read_json
from agentevo.runs import CALLS_FILE, CHECKPOINTS_DIR, LEDGER_FILE, MEMORY_DIR, RESULTS_DB, RUN_FILE, RunDir

if TYPE_CHECKING:
    from agentevo.agents.episode import EpisodeBudget
    from agentevo.config import AgentevoConfig
    from agentevo.memory.episodes import RunMemory
    from agentevo.tasks import Task


def run(
    agent: str = typer.Option(
        "seed",
        help="`seed`, the path of an agent package folder, or `archive:RUN:NODE` (a node of a run's archive).",
    ),
    suite: str = typer.Option(
        "builtin",
        help="builtin | ladder | humaneval:PATH | mbpp:PATH | exercism:PATH | miniwob[:TASK,...] (web)",
    ),
    split: str | None = typer.Option("test", help="train | validation | test | all"),
    limit: int | None = typer.Option(None, help="Run only the first N tasks of the split."),
    spread: bool = typer.Option(
        False,
        "--spread/--first",
        help="With --limit: N tasks spread over levels and templates, not the first N.",
    ),
    backbone: str | None = typer.Option(
        None,
        help="auto | local | llamacpp | vllm | openai (default: from config; auto = llama.cpp on CPUs once built).",
    ),
    parallel: int = typer.Option(2, min=1, help="Episodes at once."),
    attempts: int = typer.Option(1, min=1, help="Attempts per task (for pass@k)."),
    max_steps: int | None = typer.Option(None, help="Model calls per episode (default: the agent's)."),
    memory: bool | None = typer.Option(
        None, "--memory/--no-memory", help="Experience memory for this run (default: memory.enabled)."
    ),
) -> None:
    """Run an agent on a suite in isolated sandboxes, score every episode, and print where results are."""
    from agentevo.agents.episode import EpisodeBudget
    from agentevo.archive import ARCHIVE_REF, ArchiveError, export_ref
    from agentevo.kinds import seed_for
    from agentevo.manifest import run_manifest
    from agentevo.orchestrate import RunInterrupted, run_suite
    from agentevo.tasks.spread import chosen

    settings = with_backbone(config(), backbone)
    if memory is not None:
        settings = settings.model_copy(
            update={"memory": settings.memory.model_copy(update={"enabled": memory})}
        )
    stop_on_sigterm()
    with clear_errors(), _interruptible(run_dir_hint=settings.archives_dir):  # before a run folder exists
        tasks = chosen(suite, None if split == "all" else split, limit, spread, on_note=note)
    run_dir = RunDir(settings.archives_dir)
    agent_id = "seed"
    if agent.startswith(ARCHIVE_REF):
        try:
            agent_id, agent_dir = export_ref(agent, settings.archives_dir, run_dir.path / "agent")
        except ArchiveError as exc:
            console.print(f"[red]error:[/] --agent {agent}: {exc}", highlight=False)
            raise typer.Exit(2) from None
    else:
        agent_dir = seed_for(suite) if agent == "seed" else Path(agent).resolve()
        agent_id = agent_dir.name
    if not (agent_dir / "run.py").is_file():
        console.print(
            f"[red]error:[/] --agent {agent}: no agent package there (it needs run.py; see agentevo/agents/seed)"
        )
        raise typer.Exit(2)
    with clear_errors(), _interruptible(run_dir_hint=settings.archives_dir):
        run_dir.describe(
            command="agentevo run",
            agent=agent,
            suite=suite,
            split=split,
            limit=limit,
            spread=spread,
            attempts=attempts,
            max_steps=max_steps,
            backbone=settings.llm.backbone,
            **run_manifest(settings),
        )
        budget = EpisodeBudget(max_steps=max_steps) if max_steps else None
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console) as bar:
            progress = bar.add_task("episodes", total=len(tasks) * attempts)
            done: list = []

            def show(row) -> None:
                done.append(row)
                rate = sum(r.passed for r in done) / len(done)
                bar.update(progress, advance=1, description=f"episodes (pass rate {rate:.0%})")

            try:
                with _memory(settings, run_dir.run_id) as lessons:
                    run_suite(
                        settings,
                        tasks,
                        agent_dir=agent_dir,
                        run=run_dir,
                        agent_id=agent_id,
                        attempts=attempts,
                        parallel=parallel,
                        budget=budget,
                        on_result=show,
                        memory=lessons,
                    )
                    if lessons is not None:
                        run_dir.describe(lessons_used=sorted(lessons.used))
                        if settings.memory.distil:
                            bar.stop()
                            _distil(settings, lessons, run_dir, tasks, agent_dir, agent_id, budget)
            except RunInterrupted as stop:
                bar.stop()
                console.print(
                    f"[yellow]interrupted:[/] {stop}: {run_dir.path / RESULTS_DB} and {run_dir.results_path}"
                )
                raise typer.Exit(INTERRUPTED) from None
    print_results(run_dir.path)
    failure = print_infrastructure(run_dir.path)
    console.print(f"results: {run_dir.path / RESULTS_DB} and {run_dir.results_path}")
    console.print(
        f"trajectories: {run_dir.path / CALLS_FILE} (LLM calls), {run_dir.path / CHECKPOINTS_DIR} (episode checkpoints)"
    )
    if failure:
        console.print(f"[red]error:[/] {failure}", highlight=False)
        raise typer.Exit(1)


def _distil(
    settings: AgentevoConfig,
    lessons: RunMemory,
    run_dir: RunDir,
    tasks: list[Task],
    agent_dir: Path,
    agent_id: str,
    budget: EpisodeBudget | None,
) -> None:
    """Learn lessons from the run's episodes (``memory.distil``), and say what came of it."""
    from agentevo.memory.library import AddAction
    from agentevo.orchestrate.learning import distil_run
    from agentevo.serving.backbone import open_backend

    with (
        console.status("memory: reflecting on the episodes and verifying what they teach"),
        open_backend(settings) as backend,
    ):
        results = distil_run(
            settings,
            lessons,
            run_dir,
            tasks,
            agent_dir=agent_dir,
            backend=backend,
            agent_id=agent_id,
            budget=budget,
        )
    proposed, verified = sum(len(r.proposed) for r in results), sum(len(r.verified) for r in results)
    new = (AddAction.added, AddAction.superseded)
    written = sum(w.action in new for r in results for w in r.written)
    console.print(
        f"memory: reflected on {len(results)} episodes: {proposed} lessons proposed, {verified} verified, "
        f"{written} added (the rest merged into existing lessons or quarantined)"
    )
    run_dir.describe(
        lessons_distilled={
            "episodes": len(results),
            "proposed": proposed,
            "verified": verified,
            "added": written,
        }
    )


@contextlib.contextmanager
def _memory(settings: AgentevoConfig, run_id: str) -> Iterator[RunMemory | None]:
    """The run's experience memory when ``memory.enabled`` (web suites refuse it with a clear error)."""
    if not settings.memory.enabled:
        yield None
        return
    from agentevo.memory.episodes import run_memory

    path = settings.memory.path or settings.archives_dir / MEMORY_DIR
    with run_memory(settings.memory, path, run_id=run_id) as lessons:
        console.print(f"memory: lessons from {settings.memory.url or path}")
        yield lessons


def _interruptible(run_dir_hint: Path) -> contextlib.AbstractContextManager[None]:
    """Ctrl-C outside the episodes (while loading or starting a backbone): one line and exit code 130."""
    return interruptible(f"runs so far are under {run_dir_hint}")


def print_infrastructure(run_path: Path) -> str | None:
    """What the infrastructure cost the run: tries spoiled and retried (by kind), attempts left unscored, model
    calls the gateway retried, backbone restarts. Returns the error the run ends on when attempts could not be
    scored (the backbone was given up on, or the infrastructure failed some attempt on every try)."""
    from agentevo.evaluate.results import ResultsStore

    described = read_json(run_path / RUN_FILE)
    ledger = read_json(run_path / LEDGER_FILE)
    retried: Counter[str] = Counter()
    unscored = 0
    run_id = described.get("run_id", run_path.name)
    with ResultsStore(run_path / RESULTS_DB) as store:
        for summary in store.summary(run_id).values():
            retried.update(summary.retried)
            unscored += summary.infrastructure_failures
        last = [s for s in store.spoiled(run_id) if not s.retried]
    call_retries = int(ledger.get("run", {}).get("retries") or 0)
    restarts = int(described.get("backbone_restarts") or 0)
    if not (retried or unscored or call_retries or restarts):
        console.print("infrastructure: no faults")
        return None
    why = ", ".join(f"{kind} x{count}" for kind, count in sorted(retried.items())) or "none"
    console.print(
        f"infrastructure: {sum(retried.values())} episode tries retried ({why}); {unscored} attempts spoiled on "
        f"every try (left out of pass@1); {call_retries} model calls retried by the gateway; "
        f"{restarts} backbone restarts",
        highlight=False,
    )
    if described.get("backbone_failure"):
        return described["backbone_failure"]
    if unscored:
        return (
            f"{unscored} attempts could not be scored: the infrastructure failed them on every try "
            f"(resilience.attempt_retries); the last failure: {last[-1].error_kind.value}: {last[-1].detail}"
            if last
            else f"{unscored} attempts could not be scored: the infrastructure failed them on every try"
        )
    return None


def print_results(run_path: Path) -> None:
    from agentevo.evaluate.results import ResultsStore

    store = ResultsStore(run_path / RESULTS_DB)
    rows = store.rows()
    table = Table(
        "task", "attempt", "passed", "score", "tokens", "seconds", "error", title=f"run {run_path.name}"
    )
    for r in sorted(rows, key=lambda r: (r.task_id, r.attempt)):
        table.add_row(
            r.task_id,
            str(r.attempt),
            "yes" if r.passed else "[red]no[/]",
            f"{r.score:.2f}",
            str(r.tokens),
            f"{r.seconds:.1f}",
            r.error_kind.value if r.error_kind else "",
        )
    console.print(table)
    run_id = rows[0].run_id if rows else run_path.name
    for agent in store.summary(run_id).values():
        console.print(
            f"{agent.agent_id}: pass@1 {agent.pass_at_1:.3f} over {agent.tasks} tasks, {agent.attempts} episodes "
            f"(left out, spoiled by the infrastructure: {agent.infrastructure_failures})"
        )


def results(
    run: str = typer.Argument(..., help="A run id under the archives folder, or a run folder path."),
) -> None:
    """Print a run's results table and pass rate, and write its ``results.jsonl`` view from the store (a run
    killed before its end has every row in the store but no view)."""
    from agentevo.evaluate.results import export_jsonl

    settings = config()
    path = Path(run) if Path(run).is_dir() else settings.archives_dir / run
    if not (path / RESULTS_DB).exists():
        console.print(f"[red]error:[/] no results at {path} (expected {path / RESULTS_DB})")
        raise typer.Exit(2)
    print_results(path)
    failure = print_infrastructure(path)
    console.print(f"rows: {export_jsonl(path)} (written from {path / RESULTS_DB})")
    if failure:
        console.print(f"[red]error:[/] {failure}", highlight=False)
