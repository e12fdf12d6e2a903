"""A run's folder under the archives directory: its description and its append-only results."""

from __future__ import annotations

import json
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentevo.files import append_jsonl, write_json_atomic
from agentevo.sandbox.docker_host import new_run_id

if TYPE_CHECKING:
    from agentevo.config import AgentevoConfig


def run_manifest(config: AgentevoConfig) -> dict[str, Any]:
    """What a run needs to be reproduced and compared: the whole resolved configuration, the sandbox
    image tag, the embedded model's manifest hash, and agentevo's version and git commit."""
    from agentevo.llm.model_store import MANIFEST_NAME, embedded_model_dir, sha256_file
    from agentevo.sandbox.images import image_tag

    manifest = embedded_model_dir(config.cache_dir) / MANIFEST_NAME
    return {
        "config": config.model_dump(mode="json"),
        "sandbox_image": image_tag("python"),
        "model_manifest_sha256": sha256_file(manifest) if manifest.is_file() else None,
        "agentevo_version": version("agentevo"),
        "agentevo_commit": _source_commit(),
        "python": platform.python_version(),
    }


def _source_commit() -> str | None:
    """The git commit of agentevo's own checkout (with ``+dirty`` for local edits); None when installed."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        import git

        repo = git.Repo(root)
        return repo.head.commit.hexsha + ("+dirty" if repo.is_dirty(untracked_files=False) else "")
    except (git.GitError, ValueError):
        return None


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
