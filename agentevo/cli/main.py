"""``agentevo``: the command-line entry point."""

from __future__ import annotations

from pathlib import Path

import typer

from agentevo.cli import (
    adapters,
    agent,
    archive,
    compare,
    configuration,
    demo,
    evolve,
    finetune,
    memory,
    model,
    report,
    run,
    sandbox,
    serve,
    status,
)
from agentevo.cli.common import console, state
from agentevo.config import ConfigError, load_config

app = typer.Typer(
    help="agentevo: self-improving agents that run in hardened Docker sandboxes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(model.app, name="model")
app.add_typer(archive.app, name="archive")
app.add_typer(agent.app, name="agent")
app.add_typer(memory.app, name="memory")
app.add_typer(adapters.app, name="adapters")
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("run")(run.run)
app.command("compare")(compare.compare)
app.command("evolve")(evolve.evolve)
app.command("finetune")(finetune.finetune)
app.command("results")(run.results)
app.command("status")(status.status)
app.command("report")(report.report)
app.add_typer(configuration.app, name="config")


@app.callback()
def main(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config file (default: $AGENTEVO_CONFIG or ./agentevo.yaml)."
    ),
) -> None:
    """Load the configuration once for every command."""
    try:
        state.config = load_config(config)
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app()
