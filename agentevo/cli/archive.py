"""``agentevo archive``: a run's lineage of agent variants, their diffs, and any node as a runnable folder."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

from agentevo.archive import Archive, ArchiveError, Node
from agentevo.cli.common import config, console

app = typer.Typer(help="Inspect a run's archive of agent variants.", no_args_is_help=True)
out = console.__class__(soft_wrap=True)  # stdout: what the user asked for, pipeable


def open_archive(run: str) -> Archive:
    """``run`` is a run folder or a run id under ``archives_dir``; a clear error otherwise."""
    path = Path(run) if Path(run).is_dir() else config().archives_dir / run
    try:
        return Archive.open(path)
    except ArchiveError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _node(archive: Archive, node_id: str) -> Node:
    try:
        return archive.node(node_id)
    except ArchiveError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def score_text(node: Node) -> str:
    """Each stage's score with its task count, and the gate when it failed."""
    parts = [f"{stage} {s.score:.2f} ({s.tasks_passed}/{s.tasks})" for stage, s in node.scores.items()]
    if node.gate is not None and not node.gate.passed:
        parts.append(f"gate failed: {node.gate.reason}")
    return ", ".join(parts) or "not scored"


@app.command()
def tree(run: str = typer.Argument(..., help="Run id or run folder.")) -> None:
    """The lineage as a tree: each node with its operator and scores."""
    with open_archive(run) as archive:
        nodes = archive.nodes()
    if not nodes:
        out.print("the archive is empty")
        return
    branches: dict[str, Tree] = {}
    root = None
    for node in nodes:  # parents are always added before their children
        label = f"[bold]{node.id}[/] [dim]{node.operator}[/] {score_text(node)}"
        if node.parent is None:
            root = branches[node.id] = Tree(label)
        else:
            branches[node.id] = branches[node.parent].add(label)
    out.print(root)


@app.command()
def show(
    run: str = typer.Argument(..., help="Run id or run folder."),
    node: str | None = typer.Argument(None, help="One node's full record (JSON)."),
) -> None:
    """All nodes as a table, or one node's full record."""
    with open_archive(run) as archive:
        if node is not None:
            out.print_json(json.dumps(_node(archive, node).model_dump(mode="json")))
            return
        nodes = archive.nodes()
    table = Table("node", "parent", "gen", "operator", "diff lines", "scores", "tokens", "commit")
    for n in nodes:
        table.add_row(
            n.id,
            n.parent or "-",
            str(n.generation),
            n.operator,
            str(n.diff_lines),
            score_text(n),
            str(n.tokens),
            n.commit[:10],
        )
    out.print(table)


@app.command()
def diff(
    run: str = typer.Argument(..., help="Run id or run folder."), node: str = typer.Argument(...)
) -> None:
    """A node's diff against its parent (the seed's against nothing)."""
    with open_archive(run) as archive:
        _node(archive, node)
        text = archive.diff(node)
    out.print(Syntax(text, "diff", background_color="default") if out.is_terminal else text, highlight=False)


@app.command()
def export(
    run: str = typer.Argument(..., help="Run id or run folder."),
    node: str = typer.Argument(...),
    dest: Path = typer.Argument(..., help="A new folder for the agent package."),
) -> None:
    """Write a node's agent package as a standalone folder."""
    with open_archive(run) as archive:
        _node(archive, node)
        try:
            path = archive.export(node, dest)
        except FileExistsError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
    console.print(f"exported {node} to {path}")
