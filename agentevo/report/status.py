"""``agentevo status``: where a run stands, live or finished, read from its folder and the machine alone.

Nothing here asks the running process: a run is live while a process holds a file of its folder open (the loop
keeps the run's SQLite open for its whole life; found through ``/proc``), its sandboxes are those its sandbox
provider lists under its id, and what it is doing is read from the archive's event log, the result rows and the tail of
the gateway's call record. Works the same on a run killed with ``kill -9`` (it says so, and how to resume).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from agentevo import procs
from agentevo.archive import Archive
from agentevo.archive.stats import archive_stats
from agentevo.config.evolve import Stage
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.budget import TokenMeter
from agentevo.evolve.stages import next_stage
from agentevo.files import read_json
from agentevo.runs import ARCHIVE_REPO, CALLS_FILE, EVOLVE_FILE, RESULTS_DB, RUN_FILE
from agentevo.sandbox import SandboxConfig, SandboxUnavailable, provider_for

RECENT_S = 30.0  # LLM calls this recent say which episodes are under way
TAIL_BYTES = 256 * 1024  # how much of the call record's end is read for them


class RunState(str, Enum):
    running = "running"  # a process holds the run open
    stopped = "stopped"  # no process holds it, and work was left: interrupted or killed (resumable)
    finished = "finished"  # no process holds it, and nothing was left to do (or a budget was spent)


class BudgetLine(BaseModel):
    name: str
    used: float
    limit: float | None = None
    note: str = ""

    @property
    def left(self) -> float | None:
        return None if self.limit is None else max(self.limit - self.used, 0.0)


class RunStatus(BaseModel):
    """A run's standing: its state, what it is doing, its budgets, its best node (evolution runs)."""

    run_id: str
    run_dir: Path
    kind: str = Field(description="evolve (an archive of agent variants) or suite (agentevo run)")
    command: str = ""
    state: RunState
    processes: list[str] = Field(default_factory=list, description="pid and command line of each holder")
    last_activity: datetime | None = None
    running: list[str] = Field(default_factory=list, description="Jobs under way (or left) and live episodes")
    sandboxes: list[str] | None = Field(
        None, description="The run's live sandboxes; None when its sandbox provider is out of reach"
    )
    budgets: list[BudgetLine] = Field(default_factory=list)
    nodes: int = 0
    admitted: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    best: str | None = None
    best_score: float | None = None
    best_tasks: int = 0
    episodes: int = 0
    passed: int = 0
    planned: int | None = None
    hint: str = ""


class StatusError(ValueError):
    """The folder is not a run; the message names the fix."""


def run_status(run_dir: Path) -> RunStatus:
    run_dir = Path(run_dir).resolve()
    described = read_json(run_dir / RUN_FILE)
    if not described and not (run_dir / ARCHIVE_REPO).is_dir():
        raise StatusError(
            f"{run_dir} is not a run folder (no {RUN_FILE}, no archive); check the run id (ls archives/)"
        )
    run_id = described.get("run_id", run_dir.name)
    pids = holders(run_dir)
    status = RunStatus(
        run_id=run_id,
        run_dir=run_dir,
        kind="evolve" if (run_dir / ARCHIVE_REPO).is_dir() else "suite",
        command=described.get("command", ""),
        state=RunState.running if pids else RunState.stopped,
        processes=[f"{pid} {_cmdline(pid)}" for pid in pids],
        last_activity=_last_activity(run_dir),
        sandboxes=sandboxes(run_id, _sandbox_config(described)),
    )
    tokens = TokenMeter(run_dir).read()
    if status.kind == "evolve":
        _evolve_status(status, run_dir, run_id, tokens, pids)
    else:
        _suite_status(status, run_dir, run_id, described, tokens)
    if status.state is RunState.running:
        status.running += _live_episodes(run_dir)
    return status


def _evolve_status(status: RunStatus, run_dir: Path, run_id: str, tokens: int, pids: list[int]) -> None:
    settings = read_json(run_dir / EVOLVE_FILE).get("evolve", {})
    stages = [Stage(**s) for s in settings.get("stages", [])]
    with Archive.open(run_dir) as archive, ResultsStore(run_dir / RESULTS_DB) as store:
        nodes = archive.nodes()
        stats = {s.id: s for s in archive_stats(archive, store, run_id)}
        rows = store.rows(run_id)
    pending = []
    for node in nodes:
        if node.gate is None:
            pending.append(f"gate {node.id}")
        elif node.gate.passed and stages and (index := next_stage(node, stages)) is not None:
            done = len({r.task_id for r in rows if r.agent_id == node.id and r.scored})
            before = sum(s.tasks or 0 for s in stages[:index])
            of = stages[index].tasks or "all remaining"
            pending.append(
                f"evaluate {node.id} stage {stages[index].name} ({max(done - before, 0)}/{of} tasks)"
            )
    scored = [stats[n.id] for n in nodes if stats[n.id].selectable]
    best = max(scored, key=lambda s: (s.score, s.evals, -s.order), default=None)
    status.nodes, status.running = len(nodes), pending
    status.admitted = sum(n.gate is not None and n.gate.passed for n in nodes)
    status.rejected = dict(
        Counter(n.gate.failure or "rejected" for n in nodes if n.gate and not n.gate.passed)
    )
    if best is not None:
        status.best, status.best_score, status.best_tasks = best.id, best.score, best.evals
    max_nodes = settings.get("max_nodes")
    status.budgets = [
        BudgetLine(name="nodes", used=len(nodes), limit=max_nodes),
        BudgetLine(name="tokens", used=tokens, limit=settings.get("max_tokens")),
    ]
    ages = [age for age in map(_age, pids) if age is not None]
    seconds, age = settings.get("max_seconds"), max(ages, default=None)
    if age is not None or seconds is not None:
        note = "this invocation so far (its process's age)" if age is not None else "counted per invocation"
        status.budgets.append(BudgetLine(name="seconds", used=age or 0.0, limit=seconds, note=note))
    if status.state is RunState.running:
        status.hint = f"agentevo report {run_id} writes the archive, scores and spending as one HTML file"
    elif pending or (max_nodes and len(nodes) < max_nodes and _budget_left(status.budgets)):
        status.hint = f"no process holds this run: resume with `agentevo evolve --resume {run_id}`"
    else:
        status.state = RunState.finished
        status.hint = f"the best agent: agentevo archive export {run_id} {status.best} DEST" if best else ""


def _budget_left(budgets: list[BudgetLine]) -> bool:
    return all(b.left is None or b.left > 0 for b in budgets if b.name != "seconds")


def _suite_status(status: RunStatus, run_dir: Path, run_id: str, described: dict, tokens: int) -> None:
    with ResultsStore(run_dir / RESULTS_DB) as store:
        rows = store.rows(run_id)
    status.episodes, status.passed = len(rows), sum(r.passed for r in rows)
    arms = len(described.get("arms") or {}) or 1  # agentevo compare runs the tasks once per arm
    if described.get("tasks") is not None:
        status.planned = int(described["tasks"]) * int(described.get("attempts") or 1) * arms
    status.budgets = [BudgetLine(name="tokens", used=tokens)]
    if status.state is RunState.running:
        return
    if "finished" in described and (arms == 1 or status.episodes >= (status.planned or 0)):  # every arm ran
        status.state = RunState.finished
        status.hint = f"agentevo results {run_id}"
    elif arms > 1:
        status.hint = f"no process holds this comparison: go on with `agentevo compare --run {run_id}`"
    else:
        status.hint = (
            "no process holds this run: it was interrupted or killed (rerun it; rows so far are kept)"
        )


def holders(run_dir: Path) -> list[int]:
    """Processes (other than this one) with a file under ``run_dir`` open: the run's own process. Linux /proc;
    elsewhere the list is empty and the state falls back to stopped/finished."""
    root = str(Path(run_dir).resolve()) + os.sep
    found = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd).startswith(root) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return sorted(found)


def sandboxes(run_id: str, config: SandboxConfig) -> list[str] | None:
    """Names of the run's live sandboxes, asked of the provider ``config`` names; None when it does not answer."""
    try:
        return provider_for(config).running(run_id)
    except SandboxUnavailable:  # say unknown rather than fail the whole status
        return None


def _sandbox_config(described: dict) -> SandboxConfig:
    """The sandbox settings the run recorded (its provider above all); the defaults when it recorded none."""
    try:
        return SandboxConfig.model_validate(described.get("config", {}).get("sandbox", {}))
    except ValidationError:  # recorded by another version of agentevo
        return SandboxConfig()


def _live_episodes(run_dir: Path) -> list[str]:
    """Episodes and mutator calls with an LLM call in the last ``RECENT_S`` seconds (from the record's tail)."""
    path = run_dir / CALLS_FILE
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(max(path.stat().st_size - TAIL_BYTES, 0))
        lines = fh.read().split(b"\n")[1:-1]
    seen: dict[tuple[str, str], float] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if time.time() - record.get("time", 0) <= RECENT_S:
            seen[(record.get("agent_id") or "-", record.get("task_id") or "-")] = record["time"]
    return [
        f"LLM calls: {agent} on {task} ({time.time() - at:.0f} s ago)" for (agent, task), at in seen.items()
    ]


def _last_activity(run_dir: Path) -> datetime | None:
    times = [p.stat().st_mtime for p in run_dir.iterdir() if p.is_file()]
    return datetime.fromtimestamp(max(times), UTC) if times else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _age(pid: int) -> float | None:
    """Seconds since ``pid`` started (Linux)."""
    started = procs.start_time(pid)
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return None if started is None else uptime - int(started) / os.sysconf("SC_CLK_TCK")
