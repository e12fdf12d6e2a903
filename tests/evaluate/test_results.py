"""Result rows in SQLite: round trip, pass@k on known tables, concurrent writers, summaries."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from agentevo.evaluate import ErrorKind, ResultRow, ResultsStore, pass_at_k
from agentevo.evaluate.results import export_jsonl, run_rows
from agentevo.runs import RESULTS_DB, RESULTS_FILE


def row(task: str, attempt: int, passed: bool, *, run: str = "r1", agent: str = "a", **extra) -> ResultRow:
    return ResultRow(run_id=run, agent_id=agent, task_id=task, suite="s", attempt=attempt, passed=passed,
                     score=1.0 if passed else 0.0, **extra)  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        yield store


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),
        (5, 2, 5, 1.0),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (5, 0, 3, 0.0),
        (5, 5, 1, 1.0),
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (2, 1, 5, 1.0),  # fewer attempts than k: pass@n
        (2, 0, 5, 0.0),
        (0, 0, 1, 0.0),
    ],
)
def test_pass_at_k_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_nonsense():
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 0)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_round_trip_and_filters(store):
    original = row("t1", 0, False, tokens=1234, seconds=5.5, error_kind=ErrorKind.tests_failed)
    store.add(original)
    store.add(row("t1", 0, True, agent="b"))
    store.add(row("t1", 0, True, run="r2"))
    (back,) = store.rows("r1", "a")
    assert back == original
    assert back.error_kind is ErrorKind.tests_failed and back.created.tzinfo is not None
    assert len(store.rows()) == 3 and len(store.rows("r1")) == 2 and len(store.rows(agent_id="b")) == 1
    assert store.run_ids() == ["r1", "r2"]


def test_same_attempt_is_replaced_not_duplicated(store):
    store.add(row("t1", 0, False, error_kind=ErrorKind.sandbox_error))
    store.add(row("t1", 0, True))
    (only,) = store.rows("r1")
    assert only.passed and only.error_kind is None


def test_pass_at_k_over_tasks_of_a_run(store):
    # Task t1: 5 attempts, 2 passed. Task t2: 5 attempts, none passed.
    for attempt in range(5):
        store.add(row("t1", attempt, attempt < 2))
        store.add(row("t2", attempt, False))
    store.add(row("t1", 0, True, agent="other"))  # another agent, counted only without agent_id
    assert store.pass_at_k("r1", 1, agent_id="a") == pytest.approx((0.4 + 0.0) / 2)
    assert store.pass_at_k("r1", 5, agent_id="a") == pytest.approx((1.0 + 0.0) / 2)
    assert store.pass_at_k("r1", 1) == pytest.approx((0.4 + 0.0 + 1.0) / 3)
    assert store.pass_at_k("missing-run", 1) == 0.0
    with pytest.raises(ValueError):
        store.pass_at_k("r1", 0)


def test_concurrent_adds_from_four_threads(tmp_path):
    path = tmp_path / "results.sqlite"
    store = ResultsStore(path)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(agent: str) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(200):
                store.add(row(f"t{i % 20}", i // 20, i % 3 == 0, agent=agent, tokens=10))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"agent{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(store.rows("r1")) == 800
    store.close()
    # A second connection (another process would see the same) reads all rows; the journal is WAL.
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 800
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(results)")}
        assert "results_run_agent_task" in indexes
    reopened = ResultsStore(path)
    summary = reopened.summary("r1")
    assert set(summary) == {f"agent{n}" for n in range(4)}
    assert all(s.attempts == 200 and s.tasks == 20 and s.tokens == 2000 for s in summary.values())
    reopened.close()


def test_summary_per_agent(store):
    for attempt in range(4):
        store.add(row("t1", attempt, attempt == 0, tokens=100, seconds=2.0,
                      error_kind=None if attempt == 0 else ErrorKind.tests_failed))  # fmt: skip
        store.add(row("t2", attempt, False, tokens=50, seconds=1.0, error_kind=ErrorKind.timeout))
    store.add(row("t1", 0, True, agent="b", tokens=7, seconds=0.5))
    store.add(ResultRow(run_id="r1", agent_id="b", task_id="t2", suite="s", passed=False, score=0.5,
                        error_kind=ErrorKind.no_submit))  # fmt: skip
    store.add(row("t9", 0, True, run="other-run"))
    summary = store.summary("r1")
    assert list(summary) == ["a", "b"]
    a, b = summary["a"], summary["b"]
    assert (a.tasks, a.attempts, a.tasks_passed) == (2, 8, 1)
    assert a.pass_at_1 == pytest.approx((0.25 + 0.0) / 2)
    assert a.mean_score == pytest.approx(1 / 8)
    assert (a.tokens, a.seconds) == (600, 12.0)
    assert a.error_kinds == {"tests_failed": 3, "timeout": 4}
    assert (b.tasks, b.attempts, b.tasks_passed, b.pass_at_1) == (2, 2, 1, 0.5)
    assert b.mean_score == pytest.approx(0.75) and b.error_kinds == {"no_submit": 1}
    assert store.summary("nothing") == {}


def test_row_validation():
    with pytest.raises(ValueError):
        row("t", -1, True)
    with pytest.raises(ValueError):
        ResultRow(run_id="r", agent_id="a", task_id="t", passed=True, score=1.5)
    assert (
        ResultRow(run_id="r", agent_id="a", task_id="t", passed=False, error_kind="no_submit").error_kind
        is ErrorKind.no_submit
    )


def test_a_rows_detail_round_trips_and_the_jsonl_view_is_written_from_the_store(tmp_path):
    """The store is the one place rows are written; results.jsonl is exported from it, whole, in its order."""
    assert run_rows(tmp_path) == [] and not (tmp_path / RESULTS_DB).exists()  # a reader creates nothing
    with ResultsStore(tmp_path / RESULTS_DB) as store:
        store.add(row("t2", 0, False, detail={"stop_reason": "stopped", "score": {"done": False}}))
        store.add(row("t1", 1, True, error_kind=None))
        store.add(row("t1", 0, False, error_kind=ErrorKind.tests_failed))
    rows = run_rows(tmp_path)
    assert [(r.task_id, r.attempt) for r in rows] == [("t1", 0), ("t1", 1), ("t2", 0)]
    assert rows[2].detail == {"stop_reason": "stopped", "score": {"done": False}} and rows[0].detail == {}
    path = export_jsonl(tmp_path)
    assert path == tmp_path / RESULTS_FILE
    assert [ResultRow.model_validate_json(line) for line in path.read_text().splitlines()] == rows
    with ResultsStore(tmp_path / RESULTS_DB) as store:  # a later row: the next export has it too
        store.add(row("t3", 0, True))
    assert len(export_jsonl(tmp_path).read_text().splitlines()) == 4


def test_a_store_written_before_rows_had_a_detail_opens_and_takes_new_rows(tmp_path):
    """A run started by an older agentevo can be resumed: its table gets the column, its rows read back."""
    path = tmp_path / RESULTS_DB
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE results (run_id TEXT NOT NULL, agent_id TEXT NOT NULL, task_id TEXT NOT NULL, "
            "suite TEXT NOT NULL, attempt INTEGER NOT NULL, passed INTEGER NOT NULL, score REAL NOT NULL, "
            "tokens INTEGER NOT NULL, seconds REAL NOT NULL, error_kind TEXT, created TEXT NOT NULL, "
            "PRIMARY KEY (run_id, agent_id, task_id, attempt))"
        )
        conn.execute(
            "INSERT INTO results VALUES ('r1','a','t1','s',0,1,1.0,5,0.5,NULL,'2026-01-01T00:00:00+00:00')"
        )
    conn.close()
    with ResultsStore(path) as store:
        store.add(row("t2", 0, False, detail={"visible": False}))
    with ResultsStore(path) as again:  # opening it twice adds nothing twice
        assert [(r.task_id, r.passed, r.detail) for r in again.rows()] == [
            ("t1", True, {}),
            ("t2", False, {"visible": False}),
        ]
