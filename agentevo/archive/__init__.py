"""The archive of agent variants: git commits, an append-only event log, node records derived from it."""

from agentevo.archive.archive import Archive, ArchiveError
from agentevo.archive.node import Event, EventKind, Gate, Node, StageScore

__all__ = ["Archive", "ArchiveError", "Event", "EventKind", "Gate", "Node", "StageScore"]
