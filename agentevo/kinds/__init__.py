"""Task kinds: the families of tasks ``run_suite`` runs (coding, web), each one module implementing
:class:`TaskKind`, and the registry that finds a suite's kind.

A new family is a module here with a class that implements ``TaskKind`` (and a task model that satisfies
``agents.episode.EpisodeTask``), listed in ``FAMILIES``; nothing else changes. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentevo.kinds import coding, web
from agentevo.kinds.base import Attempt, SuiteTask, TaskKind, episode_error_kind
from agentevo.tasks.suites import SuiteError

AnyKind = TaskKind[Any, Any, Any, Any]  # a kind chosen at run time: its own types are checked inside it

CODING: AnyKind = coding.KIND
# The families asked in order; a suite none of them claims is a coding suite.
FAMILIES: tuple[AnyKind, ...] = (web.KIND,)


def kind_for(suite: str) -> AnyKind:
    """The kind of the suite spec (or a task's suite name) ``suite``."""
    return next((kind for kind in FAMILIES if kind.claims(suite)), CODING)


def kind_of(tasks: Sequence[SuiteTask]) -> AnyKind:
    """The one kind of ``tasks`` (coding when there are none); refused when they are of several."""
    kinds = {kind_for(task.suite) for task in tasks}
    if len(kinds) > 1:
        names = " and ".join(sorted(kind.name for kind in kinds))
        raise SuiteError(
            f"a run's tasks are all of one kind, these are {names} tasks: run their suites apart"
        )
    return next(iter(kinds), CODING)


def seed_for(suite: str) -> Path:
    """The seed agent for the suite spec ``suite`` (its kind's)."""
    return kind_for(suite).seed_dir()


__all__ = [
    "CODING",
    "FAMILIES",
    "AnyKind",
    "Attempt",
    "SuiteTask",
    "TaskKind",
    "episode_error_kind",
    "kind_for",
    "kind_of",
    "seed_for",
]
