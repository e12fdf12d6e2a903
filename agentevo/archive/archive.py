"""A run's archive of agent variants: a git repository, an event log, and node records derived from it.

Layout under the run folder (``<archives_dir>/<run id>/``)::

    agents.git/       bare git repository; each node is a commit of the whole agent package
    results.sqlite    the run's SQLite: the ``archive_events`` table (source of truth) beside result rows
    nodes.json        node records, a derived view rebuilt from the events at any time

Order of writes: the commit exists before the event that admits its node, and ``nodes.json`` is
rewritten after each event; a crash between any two steps loses nothing (an orphan commit is harmless,
a stale view is rebuilt by :meth:`Archive.rebuild`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Self

from agentevo.archive.events import EventLog
from agentevo.archive.node import Event, EventKind, Node, StageScore, apply
from agentevo.archive.repo import AgentRepo
from agentevo.files import write_json_atomic
from agentevo.runs import ARCHIVE_REPO, ARCHIVE_VIEW, RESULTS_DB

ARCHIVE_REF = (
    "archive:"  # ``archive:RUN:NODE`` names a node of a run's archive wherever an agent folder is asked for
)


class ArchiveError(ValueError):
    """A request the archive cannot honour (unknown node, missing run); the message names the fix."""


class Archive:
    """Add variants, record their gates and scores, read the lineage back. Thread-safe."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.repo = AgentRepo(self.run_dir / ARCHIVE_REPO)
        self.log = EventLog(self.run_dir / RESULTS_DB)
        self._lock = threading.Lock()
        self._nodes = self._fold(self.log.replay())

    @classmethod
    def open(cls, run_dir: str | Path) -> Archive:
        """An existing run's archive; ArchiveError if the folder holds none."""
        run_dir = Path(run_dir)
        if not (run_dir / ARCHIVE_REPO).is_dir():
            raise ArchiveError(
                f"{run_dir} holds no archive ({ARCHIVE_REPO} is missing); check the run id or archives_dir"
            )
        return cls(run_dir)

    # -- writing

    def add(
        self,
        folder: Path,
        *,
        parent: str | None = None,
        operator: str = "seed",
        change: str = "",
        mutator: str | None = None,
    ) -> Node:
        """Commit ``folder`` as a new node (the seed when ``parent`` is None) and admit it to the archive."""
        with self._lock:
            if parent is None and self._nodes:
                raise ArchiveError("the archive already has its seed; give the new node a parent")
            base = self._node(parent) if parent is not None else None
            node_id = f"n{len(self._nodes)}"
            message = f"{node_id} ({operator}) from {parent or 'nothing'}\n\n{change}".strip()
            sha = self.repo.commit_folder(folder, message, base.commit if base else None, node_id)
            data = {
                "parent": parent,
                "generation": base.generation + 1 if base else 0,
                "commit": sha,
                "operator": operator,
                "change": change,
                **({"mutator": mutator} if mutator else {}),
                "diff_lines": self.repo.diff_lines(base.commit if base else None, sha),
            }
            return self._record(Event(kind=EventKind.node_added, node=node_id, data=data))

    def record_gate(self, node_id: str, passed: bool, reason: str = "", failure: str | None = None) -> Node:
        with self._lock:
            self._node(node_id)
            data = {"passed": passed, "reason": reason, "failure": failure}
            event = Event(kind=EventKind.gate_decided, node=node_id, data=data)
            return self._record(event)

    def record_score(self, node_id: str, stage: str, score: StageScore) -> Node:
        with self._lock:
            self._node(node_id)
            data = {"stage": stage, **score.model_dump()}
            return self._record(Event(kind=EventKind.node_scored, node=node_id, data=data))

    def record_lessons(self, node_id: str, used: list[str], written: list[str]) -> Node:
        with self._lock:
            self._node(node_id)
            data = {"used": sorted(used), "written": sorted(written)}
            return self._record(Event(kind=EventKind.lessons_recorded, node=node_id, data=data))

    def _record(self, event: Event) -> Node:
        event = self.log.append(event)
        apply(self._nodes, event)
        self._write_view()
        return self._nodes[event.node].model_copy(deep=True)

    # -- reading

    def nodes(self) -> list[Node]:
        with self._lock:
            return [node.model_copy(deep=True) for node in self._nodes.values()]

    def node(self, node_id: str) -> Node:
        with self._lock:
            return self._node(node_id).model_copy(deep=True)

    def children(self, node_id: str | None) -> list[Node]:
        return [node for node in self.nodes() if node.parent == node_id]

    def diff(self, node_id: str) -> str:
        node = self.node(node_id)
        parent = self.node(node.parent) if node.parent else None
        return self.repo.diff(parent.commit if parent else None, node.commit)

    def export(self, node_id: str, dest: Path) -> Path:
        """The node's agent package as a standalone folder (runnable with ``agentevo run --agent``)."""
        return self.repo.export(self.node(node_id).commit, dest)

    def rebuild(self) -> list[Node]:
        """Fold the event log again and rewrite the derived view (after it was deleted or went stale)."""
        with self._lock:
            self._nodes = self._fold(self.log.replay())
            self._write_view()
        return self.nodes()

    # -- internals

    def _node(self, node_id: str) -> Node:
        node = self._nodes.get(node_id)
        if node is None:
            known = ", ".join(self._nodes) or "none yet"
            raise ArchiveError(f"no node {node_id!r} in {self.run_dir} (nodes: {known})")
        return node

    def _fold(self, events: list[Event]) -> dict[str, Node]:
        nodes: dict[str, Node] = {}
        for event in events:
            if event.kind is EventKind.node_added and not self.repo.has(event.data["commit"]):
                raise ArchiveError(
                    f"event {event.seq} admits commit {event.data['commit']}, which the repository lacks"
                )
            apply(nodes, event)
        return nodes

    def _write_view(self) -> None:
        write_json_atomic(
            self.run_dir / ARCHIVE_VIEW, [n.model_dump(mode="json") for n in self._nodes.values()]
        )

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export_ref(ref: str, archives_dir: Path, dest: Path) -> tuple[str, Path]:
    """Export the node ``archive:RUN:NODE`` (RUN a run id under ``archives_dir`` or a run folder) into ``dest``;
    returns the node id and the folder."""
    run, _, node_id = ref.removeprefix(ARCHIVE_REF).rpartition(":")
    if not run or not node_id:
        raise ArchiveError(f"{ref!r} is not archive:RUN:NODE (e.g. archive:20261201-101500-abc123:n3)")
    run_dir = Path(run) if Path(run).is_dir() else Path(archives_dir) / run
    with Archive.open(run_dir) as archive:
        return node_id, archive.export(node_id, dest)
