"""What a comparison shows: live progress per arm, the table, the one-line summary, ``comparison.json`` and the
comparison's HTML page (``report.html`` in its run folder; ``agentevo report RUN`` writes it again)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from string import Template

from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentevo.compare.analysis import ArmSummary, Comparison, PairedSummary
from agentevo.compare.stats import Interval
from agentevo.evaluate.results import ResultRow
from agentevo.files import write_atomic, write_json_atomic
from agentevo.pages import STYLE
from agentevo.runs import COMPARISON_FILE, REPORT_FILE


class RichProgress:
    """One bar per arm: its episodes done of those planned, and its pass@1 so far."""

    def __init__(self, console: Console) -> None:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        self.bar = Progress(*columns, console=console)
        self.bars: dict[str, TaskID] = {}
        self.rows: dict[str, list[ResultRow]] = {}

    def __enter__(self) -> RichProgress:
        return self  # the bars appear with the first arm (an error before it prints alone)

    def __exit__(self, *exc: object) -> None:
        if self.bars:
            self.bar.stop()

    def arm(self, name: str, total: int, rows: list[ResultRow]) -> None:
        """The arm starts (or resumes) with ``rows`` already recorded."""
        self.bar.start()
        self.rows[name] = [r for r in rows if r.scored]
        self.bars[name] = self.bar.add_task(self._describe(name), total=total, completed=len(rows))

    def row(self, name: str, row: ResultRow) -> None:
        if row.scored:
            self.rows[name].append(row)
        self.bar.update(self.bars[name], advance=1, description=self._describe(name))

    def _describe(self, name: str) -> str:
        rows = self.rows[name]
        rate = f"pass@1 {sum(r.passed for r in rows) / len(rows):.2f}" if rows else "pass@1 -"
        return f"{name} ({rate})"


def print_table(console: Console, comparison: Comparison) -> None:
    """The table (and pass@1 per level, when the tasks have several) at its natural width, even where the console
    is narrower (a pipe, a log file): a long line wraps there, but no cell is cut."""
    for rendered in (table(comparison), levels_table(comparison), groups_table(comparison)):
        if rendered is not None:
            print_natural(console, rendered)


def print_natural(console: Console, rendered: Table) -> None:
    """``rendered`` at its natural width: where the console is narrower a long line wraps, but no cell is cut."""
    natural = Measurement.get(console, console.options.update(max_width=1000), rendered).maximum
    width = console.width
    console.width = max(width, natural)  # print(width=...) only narrows
    try:
        console.print(rendered)
    finally:
        console.width = width


def levels_table(comparison: Comparison) -> Table | None:
    """pass@1 per task level (difficulty) and arm, with task counts; None when the tasks are all of one level."""
    levels = sorted({level for arm in comparison.arms for level in arm.per_level})
    if len(levels) < 2:
        return None
    out = Table("level", *(arm.name for arm in comparison.arms), title="pass@1 per level (tasks)")
    for level in levels:
        cells = [arm.per_level.get(level) for arm in comparison.arms]
        out.add_row(str(level), *(f"{c.pass_at_1:.3f} ({c.tasks})" if c else "-" for c in cells))
    return out


def groups_table(comparison: Comparison) -> Table | None:
    """Each arm against the baseline on each group's tasks alone (the ladder: in-distribution and transfer)."""
    if not comparison.paired_by_group:
        return None
    out = Table(
        "group", "arm", "tasks", "vs baseline [95% CI]", "p", "won/lost/tied", title="paired, per group"
    )
    for group, paired in comparison.paired_by_group.items():
        for p in paired:
            out.add_row(
                group,
                p.arm,
                str(p.tasks),
                f"{p.difference:+.3f} {_ci(p.ci, signed=True)}",
                f"{p.p_value:.3g}",
                f"{p.won}/{p.lost}/{p.tied}",
            )
    return out


def _ci(interval: Interval, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"[{interval.low:{sign}.2f}, {interval.high:{sign}.2f}]"


def table(comparison: Comparison) -> Table:
    """The comparison as one rich table: a row per arm, the paired columns against the baseline (pass@k only
    with several attempts)."""
    c = comparison
    title = f"compare {c.run_id}: {c.suite}, split {c.split}, {c.tasks} tasks x {c.attempts} attempts"
    out = Table(title=title)
    pass_at_k = [f"pass@{c.attempts}"] if c.attempts > 1 else []
    for column in (
        "arm",
        "spec",
        "pass@1 [95% CI]",
        *pass_at_k,
        "vs baseline [95% CI]",
        "p",
        "won/lost/tied",
        "tokens/task",
        "s/task",
        "episodes",
    ):
        out.add_column(column, justify="left" if column in ("arm", "spec") else "right")
    paired = {p.arm: p for p in c.paired}
    for arm in c.arms:
        cells = _arm_cells(arm)[: 3 + len(pass_at_k)]
        out.add_row(*cells, *_paired_cells(paired.get(arm.name)), *_cost_cells(arm))
    return out


def _arm_cells(arm: ArmSummary) -> list[str]:
    node = arm.agent.rpartition(":")[2]
    spec = arm.spec if arm.spec.startswith(arm.agent) else f"{arm.spec} (node {node})"  # archive:RUN:best
    return [arm.name, spec, f"{arm.pass_at_1:.3f} {_ci(arm.pass_at_1_ci)}", f"{arm.pass_at_k:.3f}"]


def _paired_cells(paired: PairedSummary | None) -> list[str]:
    if paired is None:
        return ["baseline", "", ""]
    mark = "[bold]" if paired.significant else ""
    return [
        f"{mark}{paired.difference:+.3f} {_ci(paired.ci, signed=True)}",
        f"{mark}{paired.p_value:.3g}",
        f"{paired.won}/{paired.lost}/{paired.tied}",
    ]


def _cost_cells(arm: ArmSummary) -> list[str]:
    spoiled = f" (+{arm.spoiled} spoiled)" if arm.spoiled else ""
    return [
        f"{arm.tokens_per_task:,.0f}",
        f"{arm.seconds_per_task:.1f}",
        f"{arm.episodes}/{arm.planned}{spoiled}",
    ]


def summary_line(comparison: Comparison) -> str:
    """One line: each arm against the baseline, its test and what the design could have detected."""
    if not comparison.paired:
        return "no arm to compare with the baseline"
    return "; ".join(_summary(comparison, p) for p in comparison.paired)


def _summary(comparison: Comparison, paired: PairedSummary) -> str:
    arms = {a.name: a for a in comparison.arms}
    base, arm = arms[paired.baseline], arms[paired.arm]
    verdict = "a difference" if paired.significant else "no detected difference"
    mde = f"+{paired.mde:.2f}" if paired.mde is not None else "none up to pass@1 1.0"
    return (
        f"{arm.name} vs {base.name}: pass@1 {arm.pass_at_1:.3f} vs {base.pass_at_1:.3f}, {verdict} "
        f"{paired.difference:+.3f} (95% CI {paired.ci.low:+.3f} to {paired.ci.high:+.3f}, p = {paired.p_value:.3g}, "
        f"{paired.test.value}), won {paired.won} lost {paired.lost} of {paired.tasks} tasks; "
        f"smallest gain detectable with 80% power: {mde}"
    )


def write_results(comparison: Comparison) -> tuple[Path, Path]:
    """``comparison.json`` and ``report.html`` in the run folder; returns both paths."""
    folder = Path(comparison.run_dir)
    write_json_atomic(folder / COMPARISON_FILE, comparison.model_dump(mode="json"))
    return folder / COMPARISON_FILE, write_page(comparison, folder / REPORT_FILE)


def write_page(comparison: Comparison, dest: Path) -> Path:
    """The comparison's HTML page at ``dest`` (written whole, or not at all)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, page(comparison))
    return dest


def page(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page (no script, nothing fetched)."""
    return PAGE.substitute(
        title=html.escape(f"agentevo compare {comparison.run_id}"),
        style=STYLE,
        run_dir=html.escape(str(comparison.run_dir)),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        section=section(comparison),
    )


def section(comparison: Comparison) -> str:
    """The comparison's HTML section: the table, the summary, pass@1 per level and each task's passes per arm."""
    levels, groups = levels_table(comparison), groups_table(comparison)
    return (
        f'<h2>Comparison</h2><p class="meta" id="summary">{html.escape(summary_line(comparison))}</p>'
        + _html(table(comparison), "comparison")
        + (f"<h3>pass@1 per level (tasks)</h3>{_html(levels, 'per-level')}" if levels else "")
        + (f"<h3>Paired, per group</h3>{_html(groups, 'per-group')}" if groups else "")
        + f"<h3>Per task (attempts passed / scored)</h3>{_per_task(comparison)}"
    )


def _html(rendered: Table, table_id: str) -> str:
    """A rich table as an HTML table of its plain text (markup dropped, everything escaped)."""
    head = "".join(f"<th>{html.escape(str(c.header))}</th>" for c in rendered.columns)
    rows = []
    for cells in zip(*(column.cells for column in rendered.columns), strict=True):
        plain = (Console(width=10_000).render_str(str(cell)).plain for cell in cells)
        rows.append("<tr>" + "".join(f"<td>{html.escape(text)}</td>" for text in plain) + "</tr>")
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(rows)}</table>'


def _per_task(comparison: Comparison) -> str:
    arms = comparison.arms
    head = "<tr><th>task</th>" + "".join(f"<th>{html.escape(a.name)}</th>" for a in arms) + "</tr>"
    tasks = sorted({t for a in arms for t in a.per_task})
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td>" + "".join(f"<td>{_counts(a, t)}</td>" for a in arms) + "</tr>"
        for t in tasks
    )
    return f'<table id="per-task">{head}{rows}</table>'


def _counts(arm: ArmSummary, task: str) -> str:
    if task not in arm.per_task:
        return "-"
    passed, attempts = arm.per_task[task]
    return f'<span class="{"pass" if passed else "fail"}">{passed}/{attempts}</span>'


PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title><style>$style</style></head><body>
<header><h1>$title</h1><p class="meta">$run_dir &middot; generated $generated</p></header>
$section
</body></html>
""")
