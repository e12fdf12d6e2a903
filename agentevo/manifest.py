"""What a run needs to be reproduced and compared, written into its ``run.json`` (``RunDir.describe``)."""

from __future__ import annotations

import platform
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
