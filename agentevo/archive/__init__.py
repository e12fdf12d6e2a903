"""The archive of agent variants: git commits, an append-only event log, node records derived from it."""

from agentevo.archive.archive import ARCHIVE_REF, Archive, ArchiveError, export_ref
from agentevo.archive.node import Event, EventKind, Gate, Lessons, Node, StageScore

__all__ = [
    "ARCHIVE_REF",
    "Archive",
    "ArchiveError",
    "Event",
    "EventKind",
    "Gate",
    "Lessons",
    "Node",
    "StageScore",
    "export_ref",
]
