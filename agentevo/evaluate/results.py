"""Result rows in SQLite, and pass@k over them.

One row per (run, agent, task, attempt): whether the attempt passed, its score, what it cost and,
when it failed, why (``ErrorKind``). ``ResultsStore`` is safe to share between threads (one
connection behind a lock) and between processes (WAL journal, busy timeout).

The store is the one place a row is written: a row is committed whole when ``add`` returns, so a run
killed with SIGKILL keeps every row it finished, and a resumed run reads them back. A run folder's
``results.jsonl`` is only a view of its store, written on demand by :func:`export_jsonl` (``run_suite``
writes it when it ends, interrupted or not); readers that want the rows call :func:`run_rows`.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from agentevo.contract import Culprit, StopReason, blame
from agentevo.files import write_atomic
from agentevo.runs import RESULTS_DB, RESULTS_FILE


class ErrorKind(str, Enum):
    """Why an attempt did not pass. The first group is decided by the evaluator, the second by the
    agent runner, the last by the infrastructure (``contract.blame`` says whose each is)."""

    # Evaluator: what the hidden tests found.
    no_solution = "no_solution"  # the solution file is missing or empty (deleted workspace included)
    import_error = "import_error"  # the solution does not import: syntax error, exception or exit at import
    tests_failed = "tests_failed"  # it imports, but at least one test raised
    timeout = "timeout"  # a test (or the whole run) exceeded the task's time limit; also an agent timeout
    no_result = "no_result"  # the test harness gave no trustworthy result (killed, e.g. by the solution)
    tampering = "tampering"  # the solution interfered with the judging process: scores 0, never select it
    # Agent runner: how the episode ended.
    no_submit = "no_submit"  # the agent stopped without calling submit
    step_budget = "step_budget"  # it ran out of steps (LLM calls)
    token_budget = "token_budget"  # it ran out of tokens
    agent_crash = "agent_crash"  # the agent's own code crashed
    # Infrastructure: the machine's fault, never the agent's. Such attempts are retried, and excluded from scores.
    sandbox_error = "sandbox_error"  # the evaluation sandbox failed (Docker error, sandbox died)
    backbone_error = "backbone_error"  # the LLM backbone died, was restarted or stopped answering mid-episode
    gateway_error = "gateway_error"  # the LLM gateway itself failed while serving the episode
    docker_error = "docker_error"  # the Docker engine failed the episode's own sandbox

    @property
    def is_infrastructure(self) -> bool:
        """True when the attempt says nothing about the agent: scores and selection must leave it out."""
        return self.culprit.infrastructure

    @property
    def culprit(self) -> Culprit:
        """Who is to blame (``contract.blame``): the agent, or the part of the infrastructure to wait for."""
        return blame(self.value)

    @staticmethod
    def of_stop(reason: StopReason) -> ErrorKind:
        """What a row says of an episode that ended for ``reason`` before any judge spoke. A submitted episode
        is the judge's to explain; where the judge has nothing to say (a web page left unfinished), ``no_submit``."""
        return _OF_STOP.get(reason, ErrorKind.no_submit)


_OF_STOP = {
    StopReason.step_budget: ErrorKind.step_budget,
    StopReason.token_budget: ErrorKind.token_budget,
    StopReason.timeout: ErrorKind.timeout,
    StopReason.agent_crash: ErrorKind.agent_crash,
    StopReason.llm_error: ErrorKind.agent_crash,  # a call the gateway refused as the agent's own fault
    StopReason.stopped: ErrorKind.no_submit,
    StopReason.backbone_error: ErrorKind.backbone_error,
    StopReason.gateway_error: ErrorKind.gateway_error,
    StopReason.docker_error: ErrorKind.docker_error,
}


def _now() -> datetime:
    return datetime.now(UTC)


class ResultRow(BaseModel):
    """One attempt of one agent at one task within one run."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    agent_id: str
    task_id: str
    suite: str = ""
    attempt: int = Field(0, ge=0)
    passed: bool
    score: float = Field(0.0, ge=0.0, le=1.0)
    tokens: int = Field(0, ge=0)
    seconds: float = Field(0.0, ge=0.0)
    error_kind: ErrorKind | None = None
    created: datetime = Field(default_factory=_now)
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="What the row's producer keeps beside the verdict (web: the page's rewards and the "
        "episode's steps; self-training samples: what the reply showed and the hint it got).",
    )

    @property
    def scored(self) -> bool:
        """Whether the row measures the agent (False when the infrastructure spoiled it)."""
        return self.error_kind is None or not self.error_kind.is_infrastructure


class SpoiledTry(BaseModel):
    """One try of an attempt that the infrastructure spoiled, with what went wrong.

    Each was run again (``retried``), except the last try of an attempt spoiled on every try, whose row in
    ``results`` carries the infrastructure error kind.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    agent_id: str
    task_id: str
    attempt: int = Field(0, ge=0)
    try_index: int = Field(
        0, ge=0, description="0 for the first try of the attempt, 1 for its first retry, ..."
    )
    error_kind: ErrorKind
    detail: str = ""
    retried: bool = True
    created: datetime = Field(default_factory=_now)


class AgentSummary(BaseModel):
    """One agent's results within one run."""

    agent_id: str
    tasks: int = Field(description="Tasks with at least one scored attempt.")
    attempts: int = Field(description="Scored attempts (not spoiled by the infrastructure).")
    tasks_passed: int = Field(description="Tasks with at least one passing attempt.")
    pass_at_1: float
    mean_score: float
    tokens: int
    seconds: float
    error_kinds: dict[str, int] = Field(default_factory=dict)
    infrastructure_failures: int = Field(
        0,
        description="Attempts the infrastructure spoiled on every try: left out of pass@1 and the mean score.",
    )
    retried: dict[str, int] = Field(
        default_factory=dict, description="Tries spoiled by the infrastructure and run again, by error kind."
    )


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator for one task: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021).

    ``n`` attempts of which ``c`` passed. With fewer attempts than ``k`` the estimator is undefined;
    we then use ``k = n``, i.e. whether any of the attempts passed (the best estimate the data allows).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if n == 0:
        return 0.0
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _mean_pass_at(groups: dict[tuple[str, str], list[ResultRow]], k: int) -> float:
    """pass@k averaged over (agent, task) groups; 0.0 without any."""
    if not groups:
        return 0.0
    return sum(pass_at_k(len(g), sum(r.passed for r in g), k) for g in groups.values()) / len(groups)


def _scored(rows: list[ResultRow]) -> list[ResultRow]:
    """The rows that measure the agent; those the infrastructure spoiled are reported, never scored."""
    return [r for r in rows if r.scored]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    run_id     TEXT    NOT NULL,
    agent_id   TEXT    NOT NULL,
    task_id    TEXT    NOT NULL,
    suite      TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    passed     INTEGER NOT NULL,
    score      REAL    NOT NULL,
    tokens     INTEGER NOT NULL,
    seconds    REAL    NOT NULL,
    error_kind TEXT,
    created    TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, agent_id, task_id, attempt)
);
CREATE INDEX IF NOT EXISTS results_run_agent_task ON results (run_id, agent_id, task_id);
CREATE TABLE IF NOT EXISTS spoiled_tries (
    run_id     TEXT    NOT NULL,
    agent_id   TEXT    NOT NULL,
    task_id    TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    try_index  INTEGER NOT NULL,
    error_kind TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    retried    INTEGER NOT NULL,
    created    TEXT    NOT NULL,
    PRIMARY KEY (run_id, agent_id, task_id, attempt, try_index)
);
"""
_COLUMNS = (
    "run_id",
    "agent_id",
    "task_id",
    "suite",
    "attempt",
    "passed",
    "score",
    "tokens",
    "seconds",
    "error_kind",
    "created",
    "detail",
)
_INSERT = f"INSERT OR REPLACE INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SPOILED_COLUMNS = (
    "run_id",
    "agent_id",
    "task_id",
    "attempt",
    "try_index",
    "error_kind",
    "detail",
    "retried",
    "created",
)
_INSERT_SPOILED = (
    f"INSERT OR REPLACE INTO spoiled_tries ({', '.join(_SPOILED_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_SPOILED_COLUMNS))})"
)


class ResultsStore:
    """Result rows in one SQLite file. Adding a row for an existing (run, agent, task, attempt)
    replaces it, so a re-evaluated attempt is counted once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            _add_detail_column(self._conn)

    def add(self, row: ResultRow) -> None:
        values = (
            row.run_id,
            row.agent_id,
            row.task_id,
            row.suite,
            row.attempt,
            int(row.passed),
            row.score,
            row.tokens,
            row.seconds,
            row.error_kind.value if row.error_kind else None,
            row.created.isoformat(),
            json.dumps(row.detail),
        )
        with self._lock:
            self._conn.execute(_INSERT, values)

    def rows(self, run_id: str | None = None, agent_id: str | None = None) -> list[ResultRow]:
        """Rows, optionally of one run and/or one agent, ordered by run, agent, task and attempt."""
        where, args = [], []
        if run_id is not None:
            where.append("run_id = ?")
            args.append(run_id)
        if agent_id is not None:
            where.append("agent_id = ?")
            args.append(agent_id)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY run_id, agent_id, task_id, attempt"
        with self._lock:
            fetched = self._conn.execute(sql, args).fetchall()
        return [_row(values) for values in fetched]

    def add_spoiled(self, spoiled: SpoiledTry) -> None:
        """Record a try the infrastructure spoiled (the attempt is run again; its final row goes to ``add``)."""
        values = (
            spoiled.run_id,
            spoiled.agent_id,
            spoiled.task_id,
            spoiled.attempt,
            spoiled.try_index,
            spoiled.error_kind.value,
            spoiled.detail,
            int(spoiled.retried),
            spoiled.created.isoformat(),
        )
        with self._lock:
            self._conn.execute(_INSERT_SPOILED, values)

    def spoiled(self, run_id: str | None = None) -> list[SpoiledTry]:
        """Spoiled tries, optionally of one run, in order."""
        sql = f"SELECT {', '.join(_SPOILED_COLUMNS)} FROM spoiled_tries"
        args = [] if run_id is None else [run_id]
        if run_id is not None:
            sql += " WHERE run_id = ?"
        sql += " ORDER BY run_id, agent_id, task_id, attempt, try_index"
        with self._lock:
            fetched = self._conn.execute(sql, args).fetchall()
        return [
            SpoiledTry(**{**dict(zip(_SPOILED_COLUMNS, values)), "retried": bool(values[7])})
            for values in fetched
        ]

    def run_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT run_id FROM results ORDER BY run_id")]

    def pass_at_k(self, run_id: str, k: int, agent_id: str | None = None) -> float:
        """pass@k of a run: the unbiased estimator averaged over tasks (see ``pass_at_k``).

        With ``agent_id=None`` and several agents in the run, each (agent, task) pair counts as one
        task. A task with fewer than ``k`` attempts counts as pass@n. Attempts the infrastructure
        spoiled are left out (a task with no other attempt leaves the denominator). No rows: 0.0.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return _mean_pass_at(self._groups(_scored(self.rows(run_id, agent_id))), k)

    def summary(self, run_id: str) -> dict[str, AgentSummary]:
        """Per agent of the run: scored tasks and attempts, pass@1, mean score, cost, error kinds, and
        apart from those, what the infrastructure spoiled (attempts lost, tries retried)."""
        by_agent: dict[str, list[ResultRow]] = defaultdict(list)
        for row in self.rows(run_id):
            by_agent[row.agent_id].append(row)
        retried: dict[str, Counter[str]] = defaultdict(Counter)
        for spoiled in self.spoiled(run_id):
            if spoiled.retried:
                retried[spoiled.agent_id][spoiled.error_kind.value] += 1
        out = {}
        for agent_id, rows in sorted(by_agent.items()):
            scored = _scored(rows)
            groups = self._groups(scored)
            kinds = Counter(r.error_kind.value for r in rows if r.error_kind is not None)
            out[agent_id] = AgentSummary(
                agent_id=agent_id,
                tasks=len(groups),
                attempts=len(scored),
                tasks_passed=sum(any(r.passed for r in g) for g in groups.values()),
                pass_at_1=_mean_pass_at(groups, 1),
                mean_score=sum(r.score for r in scored) / max(len(scored), 1),
                tokens=sum(r.tokens for r in rows),
                seconds=sum(r.seconds for r in rows),
                error_kinds=dict(sorted(kinds.items())),
                infrastructure_failures=len(rows) - len(scored),
                retried=dict(sorted(retried[agent_id].items())),
            )
        return out

    @staticmethod
    def _groups(rows: list[ResultRow]) -> dict[tuple[str, str], list[ResultRow]]:
        groups: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
        for row in rows:
            groups[(row.agent_id, row.task_id)].append(row)
        return groups

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _row(values: tuple[Any, ...]) -> ResultRow:
    fields = dict(zip(_COLUMNS, values))
    return ResultRow(**{**fields, "passed": bool(fields["passed"]), "detail": json.loads(fields["detail"])})


def _add_detail_column(conn: sqlite3.Connection) -> None:
    """A store written before rows had a ``detail`` gets the column (empty), so its run can be resumed."""
    columns = {info[1] for info in conn.execute("PRAGMA table_info(results)")}
    if "detail" in columns:
        return
    try:
        conn.execute("ALTER TABLE results ADD COLUMN detail TEXT NOT NULL DEFAULT '{}'")
    except sqlite3.OperationalError as exc:  # another process opening the same old store added it first
        if "duplicate column" not in str(exc):
            raise


def run_rows(run_dir: Path) -> list[ResultRow]:
    """Every row of a run folder, from its store ([] before its first row): how a reader gets a run's rows."""
    if not (Path(run_dir) / RESULTS_DB).is_file():
        return []
    with ResultsStore(Path(run_dir) / RESULTS_DB) as store:
        return store.rows()


def export_jsonl(run_dir: Path) -> Path:
    """Write the run folder's ``results.jsonl`` from its store: one JSON row per line, replaced atomically.

    A view for people and tools that read files (``jq``); the store stays the truth, so a run killed before
    writing it loses nothing, and the next export writes it whole.
    """
    target = Path(run_dir) / RESULTS_FILE
    write_atomic(target, "".join(row.model_dump_json() + "\n" for row in run_rows(run_dir)))
    return target
