"""A run's folder under the archives directory: its description and its append-only results."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentevo.files import write_json_atomic
from agentevo.sandbox.docker_host import new_run_id


class RunDir:
    """``<archives>/<run id>/`` with ``run.json`` and ``results.jsonl``; appends are atomic per row."""

    def __init__(self, archives_dir: Path, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.path = Path(archives_dir) / self.run_id
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

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
        """Append one result row; a single write per row keeps concurrent readers whole."""
        data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
        line = json.dumps({"run_id": self.run_id, "time": time.time(), **data}) + "\n"
        with self._lock, open(self.results_path, "a") as fh:
            fh.write(line)

    def rows(self) -> list[dict[str, Any]]:
        if not self.results_path.exists():
            return []
        return [json.loads(line) for line in self.results_path.read_text().splitlines() if line.strip()]
