"""``agentevo config``: the configuration reference, generated from the pydantic models."""

from __future__ import annotations

from pathlib import Path

import typer

from agentevo.cli.common import console

app = typer.Typer(help="The configuration: its reference, generated from the models.", no_args_is_help=True)


@app.command()
def reference(
    output: Path = typer.Option(Path("docs/configuration.md"), "--output", "-o", help="Where to write it."),
    check: bool = typer.Option(False, help="Write nothing; exit 1 if OUTPUT differs from the models."),
) -> None:
    """Write the configuration reference (every section, field, type, default, environment variable)."""
    from agentevo.report.config_reference import reference as generate

    text = generate()
    if check:
        current = output.read_text() if output.is_file() else ""
        if current != text:
            console.print(f"[red]{output} is out of date:[/] regenerate it with `agentevo config reference`")
            raise typer.Exit(1)
        console.print(f"{output} matches the models")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    console.print(f"configuration reference: {output.resolve()}")
