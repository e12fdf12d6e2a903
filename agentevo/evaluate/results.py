"""Result rows in SQLite, and pass@k over them.

One row per (run, agent, task, attempt): whether the attempt passed, its score, what it cost and,
when it failed, why (``ErrorKind``). ``ResultsStore`` is safe to share between threads (one
connection behind a lock) and between processes (WAL journal, busy timeout).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter, defaultdict
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ErrorKind(str, Enum):
    """Why an attempt did not pass. The first group is decided by the evaluator, the second by the
    agent runner, the last two by the infrastructure."""

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
    # Infrastructure.
    sandbox_error = "sandbox_error"  # the evaluation sandbox failed (Docker error, sandbox died)


def _now() -> datetime:
    return datetime.now(timezone.utc)


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


class AgentSummary(BaseModel):
    """One agent's results within one run."""

    agent_id: str
    tasks: int
    attempts: int
    tasks_passed: int = Field(description="Tasks with at least one passing attempt.")
    pass_at_1: float
    mean_score: float
    tokens: int
    seconds: float
    error_kinds: dict[str, int] = Field(default_factory=dict)


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


def _estimate(rows: list[ResultRow], k: int) -> float:
    return pass_at_k(len(rows), sum(r.passed for r in rows), k)


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
    PRIMARY KEY (run_id, agent_id, task_id, attempt)
);
CREATE INDEX IF NOT EXISTS results_run_agent_task ON results (run_id, agent_id, task_id);
"""
_COLUMNS = (
    "run_id", "agent_id", "task_id", "suite", "attempt", "passed", "score", "tokens", "seconds", "error_kind",
    "created",
)  # fmt: skip
_INSERT = f"INSERT OR REPLACE INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


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

    def add(self, row: ResultRow) -> None:
        values = (
            row.run_id, row.agent_id, row.task_id, row.suite, row.attempt, int(row.passed), row.score,
            row.tokens, row.seconds, row.error_kind.value if row.error_kind else None,
            row.created.isoformat(),
        )  # fmt: skip
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
        return [
            ResultRow(**{**dict(zip(_COLUMNS, values)), "passed": bool(values[5])})  # type: ignore[arg-type]
            for values in fetched
        ]

    def run_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT run_id FROM results ORDER BY run_id")]

    def pass_at_k(self, run_id: str, k: int, agent_id: str | None = None) -> float:
        """pass@k of a run: the unbiased estimator averaged over tasks (see ``pass_at_k``).

        With ``agent_id=None`` and several agents in the run, each (agent, task) pair counts as one
        task. A task with fewer than ``k`` attempts counts as pass@n. No rows: 0.0.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        groups = self._groups(self.rows(run_id, agent_id))
        if not groups:
            return 0.0
        return sum(_estimate(g, k) for g in groups.values()) / len(groups)

    def summary(self, run_id: str) -> dict[str, AgentSummary]:
        """Per agent of the run: tasks, attempts, pass@1, mean score, tokens, seconds, error kinds."""
        by_agent: dict[str, list[ResultRow]] = defaultdict(list)
        for row in self.rows(run_id):
            by_agent[row.agent_id].append(row)
        out = {}
        for agent_id, rows in sorted(by_agent.items()):
            groups = self._groups(rows)
            kinds = Counter(r.error_kind.value for r in rows if r.error_kind is not None)
            out[agent_id] = AgentSummary(
                agent_id=agent_id,
                tasks=len(groups),
                attempts=len(rows),
                tasks_passed=sum(any(r.passed for r in g) for g in groups.values()),
                pass_at_1=sum(_estimate(g, 1) for g in groups.values()) / len(groups),
                mean_score=sum(r.score for r in rows) / len(rows),
                tokens=sum(r.tokens for r in rows),
                seconds=sum(r.seconds for r in rows),
                error_kinds=dict(sorted(kinds.items())),
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

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
