"""``agentevo evolve``: the evolution loop, with a live view and a closing summary that says where things are."""

from __future__ import annotations

import contextlib
import os
from functools import partial

import typer
from rich.live import Live
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
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import EvolveConfig, ExecutorName, OperatorName, PolicyName
from agentevo.evolve.budget import StopCause
from agentevo.evolve.loop import Status
from agentevo.runs import ARCHIVE_REPO, ARCHIVE_VIEW, CALLS_FILE, RESULTS_DB
from agentevo.tasks import Task


def evolve(
    suite: str | None = typer.Option(
        None, help="Tasks to evolve on (default: evolve.suite): builtin, mbpp:PATH, miniwob[:TASK,...] ..."
    ),
    split: str | None = typer.Option(None, help="The split scored on (default: evolve.split, train)."),
    policy: PolicyName | None = typer.Option(None, help="Parent selection (default: evolve.policy)."),
    operator: OperatorName | None = typer.Option(
        None, help="How children are made (default: evolve.operator)."
    ),
    operators: list[OperatorName] = typer.Option(
        [],
        "--operators",
        help="Several operators (repeat it): a bandit picks one per expansion (evolve.operators).",
    ),
    workers: int | None = typer.Option(None, min=1, help="Jobs at once (default: evolve.workers)."),
    max_nodes: int | None = typer.Option(None, min=1, help="Budget: nodes, the seed included."),
    max_tokens: int | None = typer.Option(None, min=1, help="Budget: tokens of all LLM calls."),
    max_minutes: float | None = typer.Option(None, min=0.1, help="Budget: wall-clock minutes."),
    max_dollars: float | None = typer.Option(
        None, min=0.0001, help="Budget: dollars of all LLM calls (needs evolve.prices)."
    ),
    executor: ExecutorName | None = typer.Option(
        None, help="Where episodes run: local threads or Ray tasks (default: evolve.executor)."
    ),
    ray_address: str | None = typer.Option(None, help="A Ray cluster to join (default: a local Ray)."),
    resume: str | None = typer.Option(
        None,
        help="Continue the run with this id with its saved settings (budgets given here replace its own).",
    ),
    backbone: str | None = typer.Option(None, help="Task backbone: auto | local | llamacpp | vllm | openai."),
) -> None:
    """Evolve the seed agent: select a parent, make a child, gate it, score it in stages; repeat within budgets."""
    settings = with_backbone(config(), backbone)
    chosen = {
        "suite": suite,
        "split": split,
        "policy": policy,
        "operator": operator,
        "workers": workers,
        "executor": executor,
        "ray_address": ray_address,
        "operators": operators or None,
    }
    wanted = settings.evolve.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    budgets = {
        "max_nodes": max_nodes,
        "max_tokens": max_tokens,
        "max_seconds": max_minutes * 60 if max_minutes else None,
        "max_dollars": max_dollars,
    }
    run_evolution(settings, wanted, resume, {k: v for k, v in budgets.items() if v is not None})


def run_evolution(
    settings: AgentevoConfig,
    wanted: EvolveConfig,
    resume: str | None,
    budgets: dict[str, float | int],
    tasks: list[Task] | None = None,
) -> Status:
    """Open (or resume) the run, evolve with a live view, print the summary; exits non-zero on errors. ``tasks``:
    the split's tasks to evolve on, in stage order (default: the whole split, in the suite's order)."""
    from agentevo.archive import ArchiveError
    from agentevo.evolve.stages import NotEnoughTasks
    from agentevo.evolve.start import evolve_run, open_run
    from agentevo.manifest import run_manifest
    from agentevo.serving.backbone import open_backend
    from agentevo.tasks.suites import EmptySelection, load_suite

    try:
        if resume is None:  # a bad suite spec or a selection of no task fails before a run folder exists
            load_suite(wanted.suite, split=wanted.split, on_note=note)
        run, wanted = open_run(settings, wanted, resume, budgets=budgets)
    except EmptySelection as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except (ArchiveError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    run.describe(command="agentevo evolve", **run_manifest(settings))
    parallel = wanted.workers * wanted.episode_parallel > 1
    resume_hint = f"resume with: agentevo evolve --resume {run.run_id}"
    console.print(f"evolving into {run.path} ({resume_hint})")
    stop_on_sigterm()
    with clear_errors(), interruptible(resume_hint), contextlib.ExitStack() as stack:
        backend = stack.enter_context(open_backend(settings, concurrent=parallel))
        mutators = [wanted.mutator] if wanted.mutator is not None else []
        mutator = [
            stack.enter_context(open_backend(settings.model_copy(update={"llm": llm})))
            for llm in wanted.mutators or mutators
        ] or backend
        live = stack.enter_context(Live(console=console, refresh_per_second=2, transient=True))
        try:
            status = evolve_run(
                settings,
                wanted,
                run,
                backend=backend,
                mutator_backend=mutator,
                tasks=tasks,
                backend_source=partial(open_backend, settings),
                on_tick=lambda s: live.update(_view(s, wanted)),
                on_note=lambda note: console.print(f"[yellow]{note}[/]", highlight=False),
            )
        except KeyboardInterrupt:  # the second Ctrl-C: running jobs abandoned
            stack.close()  # the backbone server this process started goes with it
            console.print(
                f"[yellow]abandoned the running jobs:[/] resume with `agentevo evolve --resume {run.run_id}` "
                "(they are redone)"
            )
            console.file.flush()
            os._exit(INTERRUPTED)  # abandoned jobs' threads are not waited for; their sandboxes are reaped
        except (NotEnoughTasks, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
    _summary(status, wanted)
    if status.cause is StopCause.interrupted:
        console.print(f"resume with: agentevo evolve --resume {status.run_id}")
        raise typer.Exit(INTERRUPTED)
    if status.cause is StopCause.failing:
        console.print(f"[red]error:[/] jobs kept failing; the last: {status.error}", highlight=False)
        raise typer.Exit(1)
    return status


def _view(status: Status, evolve: EvolveConfig) -> Table:
    table = Table.grid(padding=(0, 2))
    best = f"{status.best} ({status.best_score:.2f})" if status.best else "none yet"
    table.add_row("best", best)
    table.add_row(
        "archive",
        f"{status.nodes}/{evolve.max_nodes} nodes, {status.admitted} admitted, rejected {status.rejected or 0}",
    )
    table.add_row("running", ", ".join(status.running) or "-")
    spent = f"{status.tokens} tokens, {status.seconds:.0f} s" + (
        f", ${status.dollars:.4f}" if evolve.prices else ""
    )
    table.add_row("spent", spent)
    left = [
        f"{evolve.max_tokens - status.tokens} tokens" if evolve.max_tokens else "",
        f"{evolve.max_seconds - status.seconds:.0f} s" if evolve.max_seconds else "",
        f"${evolve.max_dollars - status.dollars:.4f}" if evolve.max_dollars else "",
    ]
    table.add_row(
        "budget left", ", ".join(x for x in left if x) or f"{evolve.max_nodes - status.nodes} nodes"
    )
    if status.error:
        table.add_row("last error", status.error[:200])
    return table


def _summary(status: Status, evolve: EvolveConfig) -> None:
    console.print(_view(status, evolve))
    assert status.cause is not None  # Evolution.run() names it before it returns
    console.print(f"stopped: {status.cause.value}", highlight=False)
    best = f"{status.best} (score {status.best_score:.2f})" if status.best else "none scored"
    console.print(f"best node: {best}", highlight=False)
    console.print(f"archive: {status.run_dir} ({ARCHIVE_REPO}, {RESULTS_DB}, {ARCHIVE_VIEW}, {CALLS_FILE})")
    console.print(f"look at it: agentevo archive tree {status.run_id}")
    if status.best:
        console.print(f"the best agent: agentevo archive export {status.run_id} {status.best} DEST")
