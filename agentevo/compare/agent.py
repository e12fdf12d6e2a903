"""An arm's agent as a folder: the seed, a folder of the user's, or a node of an evolution run's archive.

A node is exported into the comparison's run folder once, under the arm's name, and ``archive:RUN:best`` is
resolved to a node id the first time; both are kept, so a resumed comparison runs exactly the agent it began
with even when the evolution run has gone on since.
"""

from __future__ import annotations

from pathlib import Path

from agentevo.archive import ARCHIVE_REF, Archive, ArchiveError, export_ref
from agentevo.archive.stats import archive_stats, best_of
from agentevo.evaluate.results import ResultsStore
from agentevo.files import read_json
from agentevo.kinds import seed_for
from agentevo.runs import RESULTS_DB, RUN_FILE

BEST = "best"  # archive:RUN:best, the run's best node by its scores (as `agentevo evolve` reports it)


def resolve(agent: str, archives_dir: Path) -> str:
    """``agent`` with ``archive:RUN:best`` replaced by that run's best node now (``archive:RUN:NODE``)."""
    if not agent.startswith(ARCHIVE_REF):
        return agent
    run, _, node = agent.removeprefix(ARCHIVE_REF).rpartition(":")
    if node != BEST:
        return agent
    run_dir = Path(run) if Path(run).is_dir() else Path(archives_dir) / run
    run_id = read_json(run_dir / RUN_FILE).get("run_id", run_dir.name)
    with Archive.open(run_dir) as archive, ResultsStore(run_dir / RESULTS_DB) as store:
        best = best_of(archive_stats(archive, store, run_id))
    if best is None:
        raise ArchiveError(f"{agent}: no node of {run_dir} has been scored yet, so none is best")
    return f"{ARCHIVE_REF}{run}:{best.id}"


def agent_folder(agent: str, *, suite: str, archives_dir: Path, dest: Path) -> Path:
    """The folder of a resolved ``agent`` (see :func:`resolve`); an archive node is exported into ``dest``
    unless an earlier call did. ``ArchiveError`` when there is no agent package there."""
    if agent.startswith(ARCHIVE_REF):
        folder = dest if (dest / "run.py").is_file() else export_ref(agent, archives_dir, dest)[1]
    else:
        folder = seed_for(suite) if agent == "seed" else Path(agent).expanduser().resolve()
    if not (folder / "run.py").is_file():
        raise ArchiveError(
            f"agent {agent!r}: no agent package at {folder} (it needs run.py; see agentevo/agents/seed)"
        )
    return folder
