"""``agentevo status``: a live or finished run at a glance: state, what is running, budgets left, best node."""

from __future__ import annotations

import typer
from rich.table import Table

from agentevo.cli.common import console
from agentevo.cli.report import run_folder

out = console.__class__(soft_wrap=True)  # stdout: what the user asked for, pipeable


def status(
    run: str | None = typer.Argument(None, help="Run id or run folder (default: the newest run)."),
    as_json: bool = typer.Option(False, "--json", help="The status as JSON (for scripts)."),
) -> None:
    """Where a run stands: running, stopped (resumable) or finished; its jobs, sandboxes, budgets and best node."""
    from agentevo.report import StatusError, run_status

    try:
        found = run_status(run_folder(run))
    except StatusError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(found.model_dump_json())
        return
    out.print(_table(found))


def _table(s) -> Table:
    colour = {"running": "green", "stopped": "yellow", "finished": "blue"}[s.state.value]
    table = Table(title=f"{s.kind} run {s.run_id}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "state", f"[{colour}]{s.state.value}[/]" + (f" ({', '.join(s.processes)})" if s.processes else "")
    )
    table.add_row("folder", str(s.run_dir))
    if s.last_activity:
        table.add_row("last write", s.last_activity.strftime("%Y-%m-%d %H:%M:%S UTC"))
    label = "running" if s.state.value == "running" else "left to do"
    table.add_row(label, "\n".join(s.running) or "-")
    sandboxes = (
        "unknown (Docker does not answer)" if s.sandboxes is None else ", ".join(s.sandboxes) or "none"
    )
    table.add_row("sandboxes", sandboxes)
    if s.kind == "evolve":
        rejected = ", ".join(f"{k} {v}" for k, v in s.rejected.items()) or "none"
        table.add_row("archive", f"{s.nodes} nodes, {s.admitted} admitted, rejected: {rejected}")
        best = (
            f"{s.best} (score {s.best_score:.2f} on {s.best_tasks} task{'' if s.best_tasks == 1 else 's'})"
            if s.best
            else "none scored yet"
        )
        table.add_row("best node", best)
    else:
        planned = f" of {s.planned}" if s.planned else ""
        table.add_row("episodes", f"{s.episodes}{planned} done, {s.passed} passed")
    for b in s.budgets:
        used = f"{b.used:.0f}"
        text = f"{used} used" + (
            f" of {b.limit:g}, {b.left:.0f} left" if b.limit is not None else ", no limit"
        )
        table.add_row(f"budget: {b.name}", text + (f" ({b.note})" if b.note else ""))
    if s.hint:
        table.add_row("next", s.hint)
    return table
