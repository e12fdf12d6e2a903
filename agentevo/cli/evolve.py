"""``agentevo evolve``: the evolution loop, with a live view and a closing summary that says where things are."""

from __future__ import annotations

import contextlib

import typer
from rich.live import Live
from rich.table import Table

from agentevo.cli.common import clear_errors, config, console, stop_on_sigterm
from agentevo.evolve.budget import StopCause
from agentevo.evolve.config import OperatorName, PolicyName

INTERRUPTED = 130


def evolve(
    policy: PolicyName | None = typer.Option(None, help="Parent selection (default: evolve.policy)."),
    operator: OperatorName | None = typer.Option(
        None, help="How children are made (default: evolve.operator)."
    ),
    workers: int | None = typer.Option(None, min=1, help="Jobs at once (default: evolve.workers)."),
    max_nodes: int | None = typer.Option(None, min=1, help="Budget: nodes, the seed included."),
    max_tokens: int | None = typer.Option(None, min=1, help="Budget: tokens of all LLM calls."),
    max_minutes: float | None = typer.Option(None, min=0.1, help="Budget: wall-clock minutes."),
    resume: str | None = typer.Option(
        None,
        help="Continue the run with this id with its saved settings (budgets given here replace its own).",
    ),
    backbone: str | None = typer.Option(None, help="Task backbone: auto | local | llamacpp | vllm | openai."),
) -> None:
    """Evolve the seed agent: select a parent, make a child, gate it, score it in stages; repeat within budgets."""
    from agentevo.archive import ArchiveError
    from agentevo.evolve.stages import NotEnoughTasks
    from agentevo.evolve.start import evolve_run, open_run
    from agentevo.gateway.launch import open_backend
    from agentevo.runs import run_manifest

    settings = config()
    if backbone:
        settings.llm.backbone = backbone
    chosen = {"policy": policy, "operator": operator, "workers": workers}
    wanted = settings.evolve.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    budgets = {
        "max_nodes": max_nodes,
        "max_tokens": max_tokens,
        "max_seconds": max_minutes * 60 if max_minutes else None,
    }
    try:
        run, wanted = open_run(
            settings, wanted, resume, budgets={k: v for k, v in budgets.items() if v is not None}
        )
    except ArchiveError as exc:
        console.print(f"[red]error:[/] --resume {resume}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    run.describe(command="agentevo evolve", **run_manifest(settings))
    parallel = wanted.workers * wanted.episode_parallel > 1
    console.print(f"evolving into {run.path} (resume with: agentevo evolve --resume {run.run_id})")
    stop_on_sigterm()
    with clear_errors(), contextlib.ExitStack() as stack:
        backend = stack.enter_context(open_backend(settings, concurrent=parallel))
        mutator = backend
        if wanted.mutator is not None:
            mutator = stack.enter_context(open_backend(settings.model_copy(update={"llm": wanted.mutator})))
        live = stack.enter_context(Live(console=console, refresh_per_second=2, transient=True))
        try:
            status = evolve_run(
                settings, wanted, run, backend=backend, mutator_backend=mutator,
                on_tick=lambda s: live.update(_view(s, wanted.max_nodes)),
            )  # fmt: skip
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted:[/] resume with `agentevo evolve --resume {run.run_id}`")
            raise typer.Exit(INTERRUPTED) from None
        except NotEnoughTasks as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
    _summary(status)
    if status.cause is StopCause.failing:
        console.print(f"[red]error:[/] jobs kept failing; the last: {status.error}", highlight=False)
        raise typer.Exit(1)


def _view(status, max_nodes: int) -> Table:
    table = Table.grid(padding=(0, 2))
    best = f"{status.best} ({status.best_score:.2f})" if status.best else "none yet"
    table.add_row("best", best)
    table.add_row(
        "archive",
        f"{status.nodes}/{max_nodes} nodes, {status.admitted} admitted, rejected {status.rejected or 0}",
    )
    table.add_row("running", ", ".join(status.running) or "-")
    table.add_row("spent", f"{status.tokens} tokens, {status.seconds:.0f} s")
    if status.error:
        table.add_row("last error", status.error[:200])
    return table


def _summary(status) -> None:
    console.print(_view(status, status.nodes))
    console.print(f"stopped: {status.cause.value}", highlight=False)
    best = f"{status.best} (score {status.best_score:.2f})" if status.best else "none scored"
    console.print(f"best node: {best}", highlight=False)
    console.print(f"archive: {status.run_dir} (agents.git, results.sqlite, nodes.json, llm_calls.jsonl)")
    console.print(f"look at it: agentevo archive tree {status.run_id}")
    if status.best:
        console.print(f"the best agent: agentevo archive export {status.run_id} {status.best} DEST")
