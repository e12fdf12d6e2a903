"""The archive's event log: append-only rows in the run's SQLite database, one transaction per event.

It is the source of truth: node records and every other view are folds of it (``node.apply``), so they
can be deleted and rebuilt. WAL journal and a busy timeout let a reader (``agentevo archive``) follow a
live run while the loop appends.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Self

from agentevo.archive.node import Event, EventKind

SCHEMA = """
CREATE TABLE IF NOT EXISTS archive_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    data TEXT NOT NULL,
    at TEXT NOT NULL
)
"""


class EventLog:
    """Appends and replays archive events; safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(SCHEMA)

    def append(self, event: Event) -> Event:
        """Write ``event`` in its own transaction; returns it with its sequence number."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._conn.execute(
                    "INSERT INTO archive_events (kind, node, data, at) VALUES (?, ?, ?, ?)",
                    (event.kind.value, event.node, json.dumps(event.data), event.at.isoformat()),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return event.model_copy(update={"seq": cursor.lastrowid})

    def replay(self) -> list[Event]:
        """Every event, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, kind, node, data, at FROM archive_events ORDER BY seq"
            ).fetchall()
        return [
            Event(seq=seq, kind=EventKind(kind), node=node, data=json.loads(data), at=at)
            for seq, kind, node, data, at in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
