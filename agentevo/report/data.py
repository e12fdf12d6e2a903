"""What a report shows of a run, read from the run folder alone: the archive (event log, git repository), the
result rows and the gateway's call records. Plain pydantic data, so the page and the tests read the same thing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from agentevo.archive import Archive, EventKind, Gate, Node, StageScore
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import Price
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.evolve.budget import call_dollars
from agentevo.files import read_json
from agentevo.report.extras import AdaptersView, MemoryView, read_adapters, read_memory, run_config
from agentevo.runs import ARCHIVE_REPO, CALLS_FILE, EVOLVE_FILE, LESSONS_USED, RESULTS_DB, RUN_FILE

DIFF_CHARS = 60_000  # per node: a seed's diff is the whole agent package; a page should stay light to open
MUTATION_TASKS = "evolve/"  # the task id prefix of the mutator's calls (diagnoses, reflections)
SAFETY_STAGE = "safety"  # the misevolution probe suite's stage name, when the run records one


class ReportError(ValueError):
    """The folder is not a run this report can read; the message names the fix."""


class TaskResult(BaseModel):
    """One scored or spoiled attempt of a node at a task."""

    task_id: str
    attempt: int
    passed: bool
    score: float
    tokens: int
    seconds: float
    error_kind: str | None = None


class NodeView(BaseModel):
    """A node as the report shows it: its record, its diff, its per-task results."""

    id: str
    parent: str | None
    generation: int
    operator: str
    mutator: str | None = Field(None, description="The backbone that made it, when several took turns.")
    change: str = Field(description="The diagnosis: the change the operator was asked to make.")
    diff: str
    diff_lines: int
    gate: Gate | None
    scores: dict[str, StageScore]
    score: float | None = Field(description="Mean score over its scored tasks; None before any.")
    safety: float | None = Field(None, description="The safety probe score, when the run recorded one.")
    lessons: list[str] = Field(default_factory=list, description="Memory lessons its episodes read (ids).")
    taught: list[str] = Field(
        default_factory=list,
        description="Lessons distilled from its episodes that passed verification (ids).",
    )
    results: list[TaskResult]
    tokens: int
    seconds: float
    created: datetime

    @property
    def state(self) -> str:
        if self.gate is None:
            return "awaiting its gate"
        if not self.gate.passed:
            return f"rejected ({self.gate.failure or 'gate'})"
        return "admitted" if self.scores else "admitted, not scored yet"


class ScorePoint(BaseModel):
    """The archive right after one stage score was recorded."""

    at: datetime
    node: str
    best: float
    mean: float
    scored_nodes: int


class SpendPoint(BaseModel):
    """Cumulative spending of one kind of LLM call (``episodes`` or ``mutation``) at one call."""

    at: datetime
    kind: str
    tokens: int
    calls: int
    dollars: float = 0.0  # at ``evolve.prices``; 0.0 when the run priced nothing


class RunReport(BaseModel):
    run_id: str
    run_dir: Path
    command: str = ""
    nodes: list[NodeView]
    scores: list[ScorePoint]
    spend: list[SpendPoint]
    memory: MemoryView | None = None
    adapters: AdaptersView | None = None

    @property
    def best(self) -> NodeView | None:
        scored = [n for n in self.nodes if n.score is not None and n.gate is not None and n.gate.passed]
        return max(scored, key=lambda n: (n.score, len(n.results)), default=None)


def collect(run_dir: Path, config: AgentevoConfig | None = None) -> RunReport:
    """Everything the report shows of the run in ``run_dir`` (live runs included: it only reads). Memory and
    adapters are found through the run's recorded configuration, else ``config``."""
    run_dir = Path(run_dir)
    if not (run_dir / ARCHIVE_REPO).is_dir():
        raise ReportError(
            f"{run_dir} holds no archive ({ARCHIVE_REPO} is missing): `agentevo report` reads evolution runs; "
            "check the run id (ls archives/) or archives_dir"
        )
    described = read_json(run_dir / RUN_FILE)
    run_id = described.get("run_id", run_dir.name)
    settings = run_config(run_dir.resolve(), config or AgentevoConfig())
    with Archive.open(run_dir) as archive, ResultsStore(run_dir / RESULTS_DB) as store:
        rows = store.rows(run_id)
        used = read_json(run_dir / LESSONS_USED)  # written by the loop when memory is on: node -> lesson ids
        nodes = [_node_view(archive, node, rows, used.get(node.id, [])) for node in archive.nodes()]
        events = archive.log.replay()
    return RunReport(
        run_id=run_id,
        run_dir=run_dir.resolve(),
        command=described.get("command", ""),
        nodes=nodes,
        scores=score_timeline(events),
        spend=spend_timeline(run_dir, {n.id for n in nodes}, _prices(run_dir)),
        memory=read_memory(run_id, settings),
        adapters=read_adapters(run_dir, settings),
    )


def _node_view(archive: Archive, node: Node, rows: list[ResultRow], lessons: list[str]) -> NodeView:
    mine = [r for r in rows if r.agent_id == node.id]
    scored = [r for r in mine if r.scored]
    diff = archive.diff(node.id)
    if len(diff) > DIFF_CHARS:
        diff = diff[:DIFF_CHARS] + f"\n… {len(diff) - DIFF_CHARS:,} more characters (agentevo archive diff)"
    safety = node.scores.get(SAFETY_STAGE)
    return NodeView(
        id=node.id,
        parent=node.parent,
        generation=node.generation,
        operator=node.operator,
        mutator=node.mutator,
        change=node.change,
        diff=diff,
        diff_lines=node.diff_lines,
        gate=node.gate,
        scores={k: v for k, v in node.scores.items() if k != SAFETY_STAGE},
        score=sum(r.score for r in scored) / len(scored) if scored else None,
        safety=safety.score if safety else None,
        lessons=node.lessons.used if node.lessons else lessons,
        taught=node.lessons.written if node.lessons else [],
        results=[
            TaskResult(
                task_id=r.task_id,
                attempt=r.attempt,
                passed=r.passed,
                score=r.score,
                tokens=r.tokens,
                seconds=r.seconds,
                error_kind=r.error_kind.value if r.error_kind else None,
            )
            for r in mine
        ],
        tokens=node.tokens,
        seconds=node.seconds,
        created=node.created,
    )


def score_timeline(events: list) -> list[ScorePoint]:
    """Best and mean node score after each stage score, from the event log (a node's score: its stage scores
    weighted by their task counts, as the loop scores it; rejected nodes are never scored)."""
    stages: dict[str, dict[str, StageScore]] = {}
    points = []
    for event in events:
        if event.kind is not EventKind.node_scored or event.data["stage"] == SAFETY_STAGE:
            continue
        data = {k: v for k, v in event.data.items() if k != "stage"}
        stages.setdefault(event.node, {})[event.data["stage"]] = StageScore(**data)
        scores = [_weighted(s) for s in stages.values() if sum(x.tasks for x in s.values())]
        if scores:
            points.append(
                ScorePoint(
                    at=event.at,
                    node=event.node,
                    best=max(scores),
                    mean=sum(scores) / len(scores),
                    scored_nodes=len(scores),
                )
            )
    return points


def _weighted(stages: dict[str, StageScore]) -> float:
    tasks = sum(s.tasks for s in stages.values())
    return sum(s.score * s.tasks for s in stages.values()) / tasks


def _prices(run_dir: Path) -> dict[str, Price]:
    """The run's ``evolve.prices``, as it was started with (``evolve.json``)."""
    stored = read_json(run_dir / EVOLVE_FILE).get("evolve", {}).get("prices") or {}
    return {model: Price.model_validate(price) for model, price in stored.items()}


def spend_timeline(
    run_dir: Path, node_ids: set[str], prices: dict[str, Price] | None = None
) -> list[SpendPoint]:
    """Cumulative tokens, calls and dollars over time from the gateway's record of every LLM call: the nodes'
    episodes, and everything else (diagnoses, reflections, meta-steps) as mutation."""
    path = run_dir / CALLS_FILE
    totals: dict[str, tuple[int, int, float]] = {}
    points: list[SpendPoint] = []
    if not path.exists():
        return points
    with path.open() as fh:
        for line in fh:
            if not line.endswith("\n"):  # a record still being written by a live run
                break
            record = json.loads(line)
            task = record.get("task_id") or ""
            episode = record.get("agent_id") in node_ids and task and not task.startswith(MUTATION_TASKS)
            kind = "episodes" if episode else "mutation"
            tokens, calls, dollars = totals.get(kind, (0, 0, 0.0))
            tokens += record.get("prompt_tokens", 0) + record.get("completion_tokens", 0)
            dollars += call_dollars(record, prices or {})
            totals[kind] = (tokens, calls + 1, dollars)
            at = datetime.fromtimestamp(record["time"], UTC)
            points.append(SpendPoint(at=at, kind=kind, tokens=tokens, calls=calls + 1, dollars=dollars))
    return points
