"""``agentevo memory``: the experience library - list, search, show, export, import, quarantine, purge, serve."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from agentevo.cli.common import config, console
from agentevo.runs import MEMORY_DIR

if TYPE_CHECKING:
    from agentevo.memory import Library

app = typer.Typer(help="The experience library: lessons distilled from trajectories.", no_args_is_help=True)
out = console.__class__(soft_wrap=True)  # stdout: what the user asked for, pipeable


def memory_path() -> Path:
    settings = config()
    return settings.memory.path or settings.archives_dir / MEMORY_DIR


@contextlib.contextmanager
def library() -> Iterator[Library]:
    """The configured library (through its service when one owns the directory); errors as one line."""
    from agentevo.memory import Library, MemoryFileError, MemoryStoreError
    from agentevo.memory.embedding import EmbeddingUnavailable

    try:
        with Library.open(config().memory, default_path=memory_path()) as lib:
            yield lib
    except (MemoryStoreError, MemoryFileError, EmbeddingUnavailable) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _table(title: str) -> Table:
    return Table("id", "status", "trigger", "lesson", "helped/hurt", "sources", title=title)


def _row(table: Table, lesson, *extra: str) -> None:
    c = lesson.counters
    table.add_row(
        lesson.id[:12],
        lesson.status.value,
        lesson.trigger[:60],
        lesson.lesson[:70],
        f"{c.helped}/{c.hurt}",
        ",".join(sorted(lesson.sources))[:30],
        *extra,
    )


@app.command("list")
def list_(
    status: str | None = typer.Option(None, help="active | superseded | quarantined (default: all)."),
    evicted: bool = typer.Option(False, help="List the lessons the cap evicted instead."),
) -> None:
    """The lessons in the library."""
    from agentevo.memory import LessonStatus

    try:
        wanted = LessonStatus(status) if status else None
    except ValueError:
        console.print(
            f"[red]error:[/] --status {status}: use one of {', '.join(s.value for s in LessonStatus)}"
        )
        raise typer.Exit(2) from None
    with library() as lib:
        lessons = sorted(lib.lessons(wanted, evicted=evicted), key=lambda x: x.updated_at, reverse=True)
    table = _table(f"{len(lessons)} {'evicted ' if evicted else ''}lessons in {memory_path()}")
    for lesson in lessons:
        _row(table, lesson)
    out.print(table)


@app.command()
def search(
    query: str = typer.Argument(..., help="A task or situation, in words."),
    k: int = typer.Option(5, min=1, max=50, help="Lessons to return."),
) -> None:
    """Retrieve lessons as an agent would (active ones only, re-ranked), with the score's parts."""
    with library() as lib:
        hits = lib.retrieve(query, k=k)
    table = Table("id", "score", "sim", "keywords", "useful", "recency", "trigger", "lesson")
    for h in hits:
        table.add_row(
            h.lesson.id[:12],
            f"{h.score:.3f}",
            f"{h.similarity:.2f}",
            f"{h.keywords:.2f}",
            f"{h.usefulness:.2f}",
            f"{h.recency:.2f}",
            h.lesson.trigger[:50],
            h.lesson.lesson[:60],
        )
    out.print(table if hits else "no lesson is relevant (the library is empty or nothing is similar enough)")


@app.command()
def show(lesson_id: str = typer.Argument(..., help="A lesson id (a unique prefix will do).")) -> None:
    """One lesson in full, as JSON: provenance, counters, status, version."""
    with library() as lib:
        found = lib.get(lesson_id) or _by_prefix(lib, lesson_id)
    if found is None:
        console.print(f"[red]error:[/] no lesson {lesson_id} (see `agentevo memory list`)")
        raise typer.Exit(1)
    lesson, evicted = found
    out.print_json(lesson.model_dump_json())
    if evicted:
        console.print("(evicted by the cap: kept for export, no longer retrieved)")


def _by_prefix(lib: Library, prefix: str):
    for evicted in (False, True):
        matches = [x for x in lib.lessons(evicted=evicted) if x.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0], evicted
    return None


@app.command("export")
def export_(path: Path = typer.Argument(..., help="JSON-lines file to write.")) -> None:
    """Every lesson (evicted ones too) and case, as JSON lines."""
    with library() as lib:
        counts = lib.export(path)
    console.print(
        f"exported {counts['lessons']} lessons, {counts['evicted']} evicted, {counts['cases']} cases: {path}"
    )


@app.command("import")
def import_(path: Path = typer.Argument(..., help="A file `agentevo memory export` wrote.")) -> None:
    """Load an export (by id: importing twice changes nothing; one bad line and nothing is written)."""
    with library() as lib:
        counts = lib.import_(path)
    console.print(
        f"imported {counts['lessons']} lessons, {counts['evicted']} evicted, {counts['cases']} cases "
        f"into {memory_path()}"
    )


@app.command()
def quarantine(
    lesson_id: str = typer.Argument(...),
    reason: str = typer.Option("quarantined by hand", help="Why (kept on the lesson)."),
) -> None:
    """Take a lesson out of retrieval (it stays listed and exportable)."""
    from agentevo.memory import MemoryStoreError

    with library() as lib:
        try:
            lesson = lib.quarantine(lesson_id, reason)
        except MemoryStoreError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
    console.print(f"quarantined {lesson.id}: {reason}")


@app.command()
def purge(
    source: str = typer.Option(..., "--source", help="The source (run id) whose writes to remove."),
) -> None:
    """Remove everything one source wrote: its lessons and cases; lessons others vouch for lose its provenance."""
    with library() as lib:
        result = lib.purge(source)
    console.print(
        f"purged source {source!r}: {result.deleted} lessons deleted, {result.trimmed} kept by other sources "
        f"(its provenance removed), {result.cases} cases deleted"
    )


@app.command()
def serve(
    port: int | None = typer.Option(None, help="Loopback port (default: memory.port; 0 picks a free one)."),
) -> None:
    """Own the library's directory and serve it on loopback, so several processes can share it; Ctrl-C stops."""
    from agentevo.memory import MemoryStoreError
    from agentevo.memory.service import MemoryService

    path = memory_path()
    try:
        service = MemoryService(path, port if port is not None else config().memory.port).start()
    except MemoryStoreError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    print(service.url, flush=True)
    console.print(
        f"serving the memory at {path} on {service.url} (set memory.url to use it); log: {path / 'server.log'}"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        service.stop()
