"""The report as one self-contained HTML file: plotly's JavaScript inlined, the data embedded, nothing fetched.

Diffs, diagnoses and task ids are agent-written text: they enter the page as JSON and are shown with
``textContent`` (never parsed as HTML), and ``<`` is escaped inside the embedded JSON so no text can end its
``<script>`` element.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from string import Template

import plotly.offline
from plotly.graph_objects import Figure

from agentevo.files import write_atomic
from agentevo.pages import STYLE
from agentevo.report.data import RunReport
from agentevo.report.figures import memory_figure, score_figure, spend_figure, tree_figure

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
CLICK = "document.getElementById('{plot_id}').on('plotly_click', function (e) { showNode(e.points[0].customdata); });"


def render(report: RunReport) -> str:
    """The whole page."""
    best = report.best
    data = {
        "run_id": report.run_id,
        "best": best.id if best else (report.nodes[0].id if report.nodes else None),
        "nodes": [{**n.model_dump(mode="json"), "state": n.state} for n in report.nodes],
    }
    admitted = sum(n.gate is not None and n.gate.passed for n in report.nodes)
    rejected = sum(n.gate is not None and not n.gate.passed for n in report.nodes)
    tasks = len({r.task_id for r in best.results}) if best else 0
    summary = f"{len(report.nodes)} nodes, {admitted} admitted, {rejected} rejected; best: " + (
        f"{best.id}, score {best.score:.2f} over {tasks} tasks" if best else "none scored yet"
    )
    return PAGE.substitute(
        title=html.escape(f"agentevo report {report.run_id}"),
        run_id=html.escape(report.run_id),
        run_dir=html.escape(str(report.run_dir)),
        command=html.escape(report.command or "-"),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        summary=html.escape(summary),
        plotlyjs=plotly.offline.get_plotlyjs(),
        data=json.dumps(data).replace("<", "\\u003c"),
        script=SCRIPT,
        style=STYLE,
        tree=_figure(tree_figure(report.nodes), "tree-plot", CLICK),
        scores=_figure(score_figure(report.scores), "score-plot"),
        spend=_figure(spend_figure(report.spend), "spend-plot"),
        memory=_memory(report),
        adapters=_adapters(report),
        table=_node_table(report),
    )


def write_report(report: RunReport, dest: Path) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, render(report))
    return dest


def _figure(figure: Figure, div_id: str, post_script: str | None = None) -> str:
    return figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG, post_script=post_script
    )


def _memory(report: RunReport) -> str:
    memory = report.memory
    if memory is None:
        return '<p class="absent" id="memory-absent">This run used no experience memory (memory.enabled off).</p>'
    rows = "".join(
        f"<tr><td>{html.escape(lesson.id)}</td><td>{html.escape(lesson.lesson)}</td><td>{html.escape(lesson.status)}"
        f"</td><td>{lesson.retrieved}</td><td>{lesson.helped}</td><td>{lesson.hurt}</td></tr>"
        for lesson in memory.top
    )
    return (
        f'<p class="source">from {html.escape(memory.source)}</p>'
        + _figure(memory_figure(memory), "memory-plot")
        + '<h3>Lessons retrieved most</h3><table id="lessons"><tr><th>lesson</th><th>text</th><th>status</th>'
        f"<th>retrieved</th><th>helped</th><th>hurt</th></tr>{rows}</table>"
    )


def _adapters(report: RunReport) -> str:
    adapters = report.adapters
    if adapters is None:
        return '<p class="absent" id="adapters-absent">No LoRA adapter was trained for this run.</p>'
    names = sorted({k for a in adapters.adapters for k in a.metrics})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in names)
    rows = []
    for a in adapters.adapters:
        created = f"{a.created:%Y-%m-%d %H:%M}" if a.created else "-"
        metrics = "".join(f"<td>{a.metrics[k]:.3f}</td>" if k in a.metrics else "<td>-</td>" for k in names)
        rows.append(
            f"<tr{' class=active' if a.active else ''}><td>{html.escape(a.name)}{' (active)' if a.active else ''}"
            f"</td><td>{created}</td>{metrics}<td>{html.escape(a.note)}</td></tr>"
        )
    return (
        f'<p class="source">from {html.escape(adapters.source)}</p><table id="adapters">'
        f"<tr><th>adapter</th><th>created</th>{head}<th>note</th></tr>{''.join(rows)}</table>"
    )


def _node_table(report: RunReport) -> str:
    rows = []
    for n in report.nodes:
        stages = ", ".join(f"{k} {s.score:.2f} ({s.tasks_passed}/{s.tasks})" for k, s in n.scores.items())
        score = f"{n.score:.2f}" if n.score is not None else "-"
        rows.append(
            f'<tr data-node="{html.escape(n.id)}"><td>{html.escape(n.id)}</td><td>{html.escape(n.parent or "-")}</td>'
            f"<td>{html.escape(n.operator)}</td><td>{html.escape(n.state)}</td><td>{score}</td>"
            f"<td>{html.escape(stages or '-')}</td><td>{n.diff_lines}</td><td>{n.tokens}</td></tr>"
        )
    return (
        '<table id="node-table"><tr><th>node</th><th>parent</th><th>operator</th><th>state</th><th>score</th>'
        "<th>stages</th><th>diff lines</th><th>tokens</th></tr>" + "".join(rows) + "</table>"
    )


SCRIPT = r"""
const DATA = JSON.parse(document.getElementById('report-data').textContent);
const NODES = Object.fromEntries(DATA.nodes.map(n => [n.id, n]));
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(table, cells, cls) {
  const tr = el('tr', null, cls);
  cells.forEach(c => tr.append(el(table.rows.length ? 'td' : 'th', c)));
  table.append(tr);
  return tr;
}
function fmt(x) { return x === null || x === undefined ? '-' : (typeof x === 'number' ? x.toFixed(2) : x); }
function showNode(id) {
  const n = NODES[id];
  const box = document.getElementById('node-details');
  if (!n) return;
  box.replaceChildren();
  box.dataset.node = id;
  box.append(el('h3', n.id + ' (' + n.operator + ')'));
  const cols = el('div', null, 'columns'), left = el('div'), right = el('div');
  cols.append(left, right);
  box.append(cols);
  const facts = el('table', null, 'facts');
  row(facts, ['field', 'value']);
  row(facts, ['parent', n.parent || '-']);
  row(facts, ['generation', n.generation]);
  if (n.mutator) row(facts, ['made by', n.mutator]);
  row(facts, ['state', n.state]);
  row(facts, ['gate', n.gate ? (n.gate.passed ? 'passed' : 'refused: ' + (n.gate.failure || '')) : 'not decided']);
  if (n.gate && n.gate.reason) row(facts, ['gate reason', n.gate.reason]);
  row(facts, ['score', fmt(n.score)]);
  Object.entries(n.scores).forEach(([k, s]) =>
    row(facts, ['stage ' + k, s.score.toFixed(2) + ' (' + s.tasks_passed + '/' + s.tasks + ' tasks, ' + s.tokens + ' tokens'
      + (s.model ? ', served by ' + s.model : '') + ')']));
  row(facts, ['safety probe', n.safety === null ? 'not recorded' : n.safety.toFixed(2)]);
  row(facts, ['memory lessons read', n.lessons.length ? n.lessons.length + ': ' + n.lessons.map(x => x.slice(0, 12)).join(', ') : 'none recorded']);
  row(facts, ['lessons taught', n.taught.length ? n.taught.length + ': ' + n.taught.map(x => x.slice(0, 12)).join(', ') : 'none recorded']);
  row(facts, ['diff lines', n.diff_lines]);
  row(facts, ['tokens / seconds', n.tokens + ' / ' + n.seconds.toFixed(1)]);
  left.append(facts);
  left.append(el('h4', 'Diagnosis (the change asked for)'));
  left.append(el('pre', n.change || '(none)', 'change'));
  left.append(el('h4', 'Per-task results (' + n.results.length + ')'));
  const tasks = el('table', null, 'tasks');
  row(tasks, ['task', 'attempt', 'passed', 'score', 'tokens', 'seconds', 'error']);
  n.results.forEach(r => row(tasks, [r.task_id, r.attempt, r.passed ? 'yes' : 'no', r.score.toFixed(2), r.tokens,
    r.seconds.toFixed(1), r.error_kind || ''], r.passed ? 'pass' : 'fail'));
  left.append(tasks);
  right.append(el('h4', 'Diff against ' + (n.parent || 'nothing')));
  const pre = el('pre', null, 'diff');
  n.diff.split('\n').forEach(line => {
    const cls = line.startsWith('+') && !line.startsWith('+++') ? 'add' : (line.startsWith('-') && !line.startsWith('---') ? 'del' : null);
    pre.append(el('span', line + '\n', cls));
  });
  right.append(pre);
  document.querySelectorAll('#node-table tr[data-node]').forEach(tr =>
    tr.classList.toggle('selected', tr.dataset.node === id));
}
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('#node-table tr[data-node]').forEach(tr =>
    tr.addEventListener('click', () => showNode(tr.dataset.node)));
  if (DATA.best) showNode(DATA.best);
});
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title>
<style>$style</style>
<script type="text/javascript">$plotlyjs</script>
</head><body>
<script type="application/json" id="report-data">$data</script>
<script>$script</script>
<header><h1>agentevo run $run_id</h1>
<p class="meta">$command &middot; $run_dir &middot; generated $generated</p>
<p class="meta" id="summary">$summary</p></header>
<h2>Archive</h2>
<p class="meta">Click a node (in the tree or the table below) for its diff, diagnosis, operator, gate, safety probe
score and per-task results.</p>
$tree
<aside id="node-details"><p class="absent">no node yet</p></aside>
<h2>Score over time</h2>
$scores
<h2>Spending over time</h2>
$spend
<h2>Experience memory</h2>
$memory
<h2>Adapters</h2>
$adapters
<h2>Nodes</h2>
$table
</body></html>
""")
