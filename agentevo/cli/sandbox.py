"""``agentevo sandbox ...``: build images, run a command in a sandbox, remove leftovers."""

from __future__ import annotations

import os
import shlex
import sys
import time

import typer

from agentevo.cli.common import clear_errors, config, console
from agentevo.sandbox import images, provider_for, start_sandbox

app = typer.Typer(help="Hardened Docker sandboxes.", no_args_is_help=True)


@app.command()
def build(
    name: str | None = typer.Argument(None, help="Image recipe under sandboxes/ (default: all)."),
    force: bool = typer.Option(False, help="Rebuild even if the content-hashed tag exists."),
) -> None:
    """Build sandbox images offline (Debian base + local wheelhouse); skips up-to-date ones."""
    with clear_errors():
        for recipe in [name] if name else images.image_names():
            started = time.monotonic()
            with console.status(f"building sandbox image [bold]{recipe}[/] (first build takes ~2 min)"):
                tag = images.ensure_image(
                    recipe,
                    force=force,
                    log=lambda line: console.print(line, highlight=False),
                    cache_dir=config().cache_dir,
                )
            console.print(f"[green]ready[/] {tag} ({time.monotonic() - started:.1f} s)")


@app.command(context_settings={"ignore_unknown_options": True})
def run(
    command: list[str] = typer.Argument(
        ..., help="The command, after `--`. One argument is run as a shell line."
    ),
    timeout: float = typer.Option(60.0, help="Seconds before the command is killed inside the sandbox."),
    env: list[str] = typer.Option([], "--env", "-e", help="NAME (from the host) or NAME=VALUE; repeatable."),
    workdir: str = typer.Option("/workspace", help="Working directory inside the sandbox."),
    image: str | None = typer.Option(None, help="Recipe name or image reference (default: from config)."),
) -> None:
    """Run a command in a fresh hardened sandbox; print its output and exit with its exit code."""
    settings = config().sandbox
    if image:
        settings = settings.model_copy(update={"image": image})
    line = command[0] if len(command) == 1 else shlex.join(command)
    variables = {}
    for item in env:
        name, sep, value = item.partition("=")
        if not sep:
            if name not in os.environ:
                console.print(f"[red]error:[/] --env {name}: not set on the host")
                raise typer.Exit(2)
            value = os.environ[name]
        variables[name] = value
    with clear_errors(), start_sandbox(settings) as sb:
        result = sb.exec(line, cwd=workdir, env=variables, timeout=timeout)
    sys.stdout.write(result.output)
    if result.output and not result.output.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    notes = [f"exit code {result.exit_code}", f"{result.elapsed:.2f} s"]
    if result.timed_out:
        notes.append(f"[yellow]timed out after {timeout:g} s[/]")
    if result.truncated:
        notes.append(f"[yellow]{result.dropped_bytes:,} bytes of output dropped[/]")
    console.print(" | ".join(notes))
    raise typer.Exit(124 if result.timed_out and result.exit_code == 0 else result.exit_code)


@app.command()
def gc(
    everything: bool = typer.Option(False, "--all", help="Remove every agentevo container, owned or not."),
) -> None:
    """Remove agentevo containers whose owner process is gone or whose lifetime is over."""
    with clear_errors():
        removed = provider_for(config().sandbox).reap(everything=everything)
    console.print(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))
