"""The report's plotly figures: the archive as a tree, scores over time, spending over time, memory growth."""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go

from agentevo.report.data import NodeView, ScorePoint, SpendPoint
from agentevo.report.extras import MemoryView

LABELS_UP_TO = 80  # node ids are written beside the markers in trees up to this size
TEMPLATE = "plotly_white"


def tree_layout(nodes: list[NodeView]) -> dict[str, tuple[float, int]]:
    """(x, depth) per node: leaves take consecutive columns in creation order, a parent sits above the middle
    of its children. Iterative, so an archive of thousands of generations lays out too."""
    ids = {n.id for n in nodes}
    children: dict[str | None, list[str]] = defaultdict(list)
    for n in nodes:
        children[n.parent if n.parent in ids else None].append(n.id)
    depth = {n.id: n.generation for n in nodes}
    x: dict[str, float] = {}
    column = 0
    stack: list[tuple[str, bool]] = [(root, False) for root in reversed(children[None])]
    while stack:
        node, expanded = stack.pop()
        kids = children.get(node, [])
        if not kids:
            x[node], column = float(column), column + 1
        elif expanded:
            x[node] = (x[kids[0]] + x[kids[-1]]) / 2
        else:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
    return {node: (x[node], depth[node]) for node in x}


def tree_figure(nodes: list[NodeView]) -> go.Figure:
    """Nodes coloured by score (admitted and scored), grey when not scored, crosses when a gate refused them;
    edges from parent to child. Each point carries its node id (``customdata``) for the click handler."""
    place = tree_layout(nodes)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for node in nodes:
        if node.parent in place:
            (x0, y0), (x1, y1) = place[node.parent], place[node.id]
            edge_x += [x0, x1, None]
            edge_y += [y0, y1, None]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": "#b0b0b0", "width": 1.5},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    groups = {
        "scored": [n for n in nodes if n.score is not None and n.gate is not None and n.gate.passed],
        "not scored": [n for n in nodes if n.score is None and (n.gate is None or n.gate.passed)],
        "rejected": [n for n in nodes if n.gate is not None and not n.gate.passed],
    }
    text_mode = "markers+text" if len(nodes) <= LABELS_UP_TO else "markers"
    for name, group in groups.items():
        if not group:
            continue
        marker: dict = {"size": 18, "line": {"width": 1, "color": "#333"}}
        if name == "scored":
            marker.update(
                color=[n.score for n in group],
                colorscale="Viridis",
                cmin=0.0,
                cmax=1.0,
                colorbar={"title": "score", "thickness": 12},
            )
        else:
            marker.update(color="#d0d0d0", symbol="x" if name == "rejected" else "circle")
        figure.add_trace(
            go.Scatter(
                x=[place[n.id][0] for n in group],
                y=[place[n.id][1] for n in group],
                mode=text_mode,
                text=[n.id for n in group],
                textposition="middle right",
                customdata=[n.id for n in group],
                hovertext=[_hover(n) for n in group],
                hoverinfo="text",
                marker=marker,
                name=name,
            )
        )
    figure.update_layout(
        template=TEMPLATE,
        height=max(360, 70 * (max((n.generation for n in nodes), default=0) + 2)),
        margin={"l": 50, "r": 20, "t": 30, "b": 30},
        clickmode="event",
        hovermode="closest",
        legend={"orientation": "h", "y": -0.08},
        xaxis={"visible": False},
        yaxis={"title": "generation", "autorange": "reversed", "dtick": 1},
    )
    return figure


def _hover(node: NodeView) -> str:
    score = f"{node.score:.2f}" if node.score is not None else "-"
    return f"{node.id} ({node.operator})<br>score {score}<br>{node.state}<br>click for details"


def score_figure(points: list[ScorePoint]) -> go.Figure:
    figure = go.Figure()
    at = [p.at for p in points]
    figure.add_trace(
        go.Scatter(
            x=at,
            y=[p.best for p in points],
            mode="lines+markers",
            name="best node",
            line={"shape": "hv"},
            text=[p.node for p in points],
        )
    )
    figure.add_trace(
        go.Scatter(
            x=at,
            y=[p.mean for p in points],
            mode="lines+markers",
            name="mean of scored nodes",
            line={"shape": "hv", "dash": "dot"},
        )
    )
    figure.update_layout(
        template=TEMPLATE,
        height=340,
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        yaxis={"title": "score", "range": [-0.02, 1.02]},
        xaxis={"title": "time (UTC)"},
    )
    return _empty_note(figure, not points, "no node scored yet")


def spend_figure(points: list[SpendPoint]) -> go.Figure:
    figure = go.Figure()
    by_kind: dict[str, list[SpendPoint]] = defaultdict(list)
    for point in points:
        by_kind[point.kind].append(point)
    priced = any(p.dollars for p in points)
    for kind, series in sorted(by_kind.items()):
        series = _thin(series)
        figure.add_trace(
            go.Scatter(
                x=[p.at for p in series],
                y=[p.tokens for p in series],
                mode="lines",
                name=f"{kind} tokens",
                line={"shape": "hv"},
                text=[f"{p.calls} calls, ${p.dollars:.4f}" for p in series],
            )
        )
        if priced:
            figure.add_trace(
                go.Scatter(
                    x=[p.at for p in series],
                    y=[p.dollars for p in series],
                    mode="lines",
                    yaxis="y2",
                    name=f"{kind} dollars",
                    line={"shape": "hv", "dash": "dot"},
                )
            )
    figure.update_layout(
        template=TEMPLATE,
        height=320,
        margin={"l": 60, "r": 60 if priced else 20, "t": 30, "b": 40},
        showlegend=True,
        yaxis={"title": "tokens (cumulative)"},
        xaxis={"title": "time (UTC)"},
    )
    if priced:  # money where evolve.prices priced the calls, on its own axis
        figure.update_layout(yaxis2={"title": "dollars (cumulative)", "overlaying": "y", "side": "right"})
    return _empty_note(figure, not points, "no LLM call recorded yet")


def memory_figure(memory: MemoryView) -> go.Figure:
    figure = go.Figure()
    at = [p.at for p in memory.growth]
    figure.add_trace(
        go.Scatter(
            x=at, y=[p.lessons for p in memory.growth], mode="lines", name="lessons", line={"shape": "hv"}
        )
    )
    figure.add_trace(
        go.Scatter(
            x=at,
            y=[p.active for p in memory.growth],
            mode="lines",
            name="active",
            line={"shape": "hv", "dash": "dot"},
        )
    )
    figure.update_layout(
        template=TEMPLATE,
        height=300,
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        yaxis={"title": "lessons"},
        xaxis={"title": "time (UTC)"},
    )
    return _empty_note(figure, not memory.growth, "no lesson written yet")


def _thin(series: list[SpendPoint], most: int = 2000) -> list[SpendPoint]:
    """At most ``most`` points of a cumulative series (its last point kept): a long run's page stays light."""
    if len(series) <= most:
        return series
    step = len(series) / most
    return [series[int(i * step)] for i in range(most)] + [series[-1]]


def _empty_note(figure: go.Figure, empty: bool, note: str) -> go.Figure:
    if empty:
        figure.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return figure
