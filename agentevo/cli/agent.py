"""``agentevo agent``: whether an agent folder honours the agent contract."""

from __future__ import annotations

from pathlib import Path

import typer

from agentevo.cli.common import clear_errors, config, console

app = typer.Typer(help="Agents and the agent contract (docs/agent-contract.md).", no_args_is_help=True)


@app.command()
def check(path: Path = typer.Argument(..., help="The agent package folder.")) -> None:
    """Import the agent, run one smoke episode with a scripted model, and print each failure with its reason."""
    from agentevo.agents.check import check_agent

    with clear_errors(), console.status(f"checking {path} (import, then one smoke episode in a sandbox)"):
        settings = config()
        report = check_agent(path, sandbox_config=settings.sandbox, cache_dir=settings.cache_dir)
    for finding in report.failures:
        console.print(f"[red]FAIL[/] {finding.failure.value}: {finding.reason}", highlight=False)
    if not report.passed:
        raise typer.Exit(1)
    console.print(
        f"[green]ok[/] {path} honours the agent contract (smoke episode: {report.stop_reason}, "
        f"{report.seconds:.1f} s)",
        highlight=False,
    )


@app.command()
def new(
    path: Path = typer.Argument(..., help="The new agent folder (must not exist, or be empty)."),
    source: str = typer.Option(
        "seed", "--from", help="Start from: seed, an agent folder, or archive:RUN:NODE."
    ),
) -> None:
    """Make a new agent folder to edit, copied from a conforming agent (by default the seed)."""
    from agentevo.agents.scaffold import ScaffoldError, free_folder, new_agent
    from agentevo.archive import ARCHIVE_REF, ArchiveError, export_ref

    try:
        if source.startswith(ARCHIVE_REF):
            folder = export_ref(source, config().archives_dir, free_folder(path))[1]
        else:
            folder = new_agent(path, None if source == "seed" else Path(source))
    except (ScaffoldError, ArchiveError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"new agent in {folder} (from {source}); next: agentevo agent check {folder}, then "
        f"agentevo run --agent {folder}",
        highlight=False,
    )
