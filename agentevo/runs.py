"""A run's folder under the archives directory: its description and its append-only results.

It imports nothing of agentevo but :mod:`agentevo.files`, so every layer can name a run and its files.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentevo.files import append_jsonl, write_json_atomic


def new_run_id() -> str:
    """A run's id: when it started, then a random suffix (sorts by time, unique between processes)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class RunDir:
    """``<archives>/<run id>/`` with ``run.json`` and ``results.jsonl``; appends are atomic per row."""

    def __init__(self, archives_dir: Path, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.path = Path(archives_dir) / self.run_id
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def results_path(self) -> Path:
        return self.path / "results.jsonl"

    def describe(self, **fields: Any) -> None:
        """Write (or update) ``run.json``."""
        target = self.path / "run.json"
        current = json.loads(target.read_text()) if target.exists() else {"run_id": self.run_id}
        current.update(fields)
        write_json_atomic(target, current)

    def append(self, row: BaseModel | dict[str, Any]) -> None:
        """Append one result row, whole, even with other threads and processes appending (``append_jsonl``)."""
        data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
        append_jsonl(self.results_path, {"run_id": self.run_id, "time": time.time(), **data})

    def rows(self) -> list[dict[str, Any]]:
        if not self.results_path.exists():
            return []
        return [json.loads(line) for line in self.results_path.read_text().splitlines() if line.strip()]
