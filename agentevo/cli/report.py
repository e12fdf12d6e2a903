"""``agentevo report``: a run as one self-contained HTML file (archive tree, scores, spending, memory, adapters)."""

from __future__ import annotations

from pathlib import Path

import typer

from agentevo.cli.common import config, console
from agentevo.runs import PLAN_FILE, REPORT_FILE, RUN_FILE


def run_folder(run: str | None) -> Path:
    """``run`` as a folder: a path, a run id under ``archives_dir``, or (None) the newest run there."""
    archives = config().archives_dir
    if run is None:
        runs = sorted(p for p in archives.iterdir() if (p / RUN_FILE).is_file()) if archives.is_dir() else []
        if not runs:
            console.print(f"[red]error:[/] no runs under {archives} (archives_dir); name a run folder")
            raise typer.Exit(2)
        return runs[-1]
    path = Path(run) if Path(run).is_dir() else archives / run
    if not path.is_dir():
        console.print(
            f"[red]error:[/] no run {run!r}: not a folder, nor a run id under {archives} (ls {archives})"
        )
        raise typer.Exit(2)
    return path


def report(
    run: str | None = typer.Argument(None, help="Run id or run folder (default: the newest run)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The HTML file (default: RUN/report.html)."
    ),
) -> None:
    """Write the run's report: one HTML file that opens offline in any browser (live runs too: it only reads).
    For a comparison (``agentevo compare``) it is the comparison's page."""
    from agentevo.report import ReportError, collect, write_report

    folder = run_folder(run)
    if (folder / PLAN_FILE).is_file():
        _comparison(folder, output or folder / REPORT_FILE)
        return
    try:
        data = collect(folder, config())
    except ReportError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    dest = write_report(data, output or folder / REPORT_FILE)
    best = data.best
    console.print(
        f"{len(data.nodes)} nodes, best {best.id} ({best.score:.2f})"
        if best
        else f"{len(data.nodes)} nodes, none scored",
        highlight=False,
    )
    console.print(f"report: {dest.resolve()} ({dest.stat().st_size / 1e6:.1f} MB, opens offline)")


def _comparison(folder: Path, dest: Path) -> None:
    """A comparison's run (``agentevo compare``): its page, computed again from its plan and rows."""
    from agentevo.compare import results_of, summary_line
    from agentevo.compare.report import write_page

    comparison = results_of(folder)
    written = write_page(comparison, dest)
    console.print(summary_line(comparison), highlight=False)
    console.print(f"report: {written.resolve()} ({written.stat().st_size / 1e3:.0f} kB, opens offline)")
