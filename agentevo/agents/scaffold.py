"""``agentevo agent new``: a new agent folder to edit, copied from a conforming agent.

Starting from an agent that already honours the contract (the seed, or any agent folder) means a user changes
only what they want different, and ``agentevo agent check`` passes from the first minute.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agentevo.agents.episode import seed_agent_dir

BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.pyc")


class ScaffoldError(ValueError):
    """The new agent cannot be made there or from that; the message names the fix."""


def free_folder(dest: Path) -> Path:
    """``dest``, if nothing would be overwritten there (it does not exist, or is empty)."""
    if dest.exists() and any(dest.iterdir()):
        raise ScaffoldError(f"{dest} already exists and is not empty: name a new folder")
    return dest


def new_agent(dest: Path, source: Path | None = None) -> Path:
    """Copy the agent folder ``source`` (by default the seed) into the new folder ``dest``."""
    folder = seed_agent_dir() if source is None else Path(source)
    if not (folder / "run.py").is_file():
        raise ScaffoldError(f"{folder} is not an agent folder (it has no run.py)")
    shutil.copytree(folder, free_folder(Path(dest)), ignore=BUILD_LEFTOVERS, dirs_exist_ok=True)
    return Path(dest)
