"""What a task kind is: the one interface between ``run_suite`` and a family of tasks (coding, web, ...).

``run_suite`` tries, retries and records attempts the same way for every family; what differs (the seed agent,
what the workers share, how an episode is played and judged, the row it leaves) is the kind's, behind
:class:`TaskKind`. A kind's task model also satisfies ``agents.episode.EpisodeTask`` (its public view and
starting files), so ``run_isolated`` needs to know no family either.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from agentevo.agents import EpisodeOutcome
from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ErrorKind, ResultRow
from agentevo.gateway import Gateway
from agentevo.runs import RunDir

if TYPE_CHECKING:  # memory loads Chroma: only runs with memory on import it
    from agentevo.memory.episodes import PinnedLessons, RunMemory


class SuiteTask(Protocol):
    """What a run reads of any task: its id, and its suite (which chooses its kind)."""

    @property
    def id(self) -> str: ...

    @property
    def suite(self) -> str: ...


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task, as the run sets it up for the task's kind: who plays, with what, and its ids."""

    config: AgentevoConfig
    agent_dir: Path
    agent_id: str
    gateway: Gateway
    run: RunDir
    budget: EpisodeBudget | None
    memory: RunMemory | PinnedLessons | None
    index: int
    episode_id: str
    seed: int | None = None  # the attempt's sampling seed; None: unseeded


TaskT_contra = TypeVar("TaskT_contra", bound=SuiteTask, contravariant=True)
SharedT = TypeVar("SharedT")  # what a run's workers share: the evaluator, the browser sandboxes
OutcomeT = TypeVar("OutcomeT", bound=EpisodeOutcome)
VerdictT = TypeVar("VerdictT")


class TaskKind(Protocol[TaskT_contra, SharedT, OutcomeT, VerdictT]):
    """A family of tasks: one module implements it (``kinds/coding.py``, ``kinds/web.py``), ``kinds`` lists it."""

    name: str  # as error messages name the family
    reads_memory: bool  # whether its runs may read and feed experience memory

    def claims(self, suite: str) -> bool:
        """Whether the suite spec (or a task's suite name) ``suite`` is of this kind."""
        ...

    def seed_dir(self) -> Path:
        """The seed agent's package folder for this kind's suites."""
        ...

    def open_shared(self, config: AgentevoConfig, size: int, run_id: str) -> AbstractContextManager[SharedT]:
        """What the run's workers share, for ``size`` episodes at once, closed when the run ends."""
        ...

    def play(self, task: TaskT_contra, attempt: Attempt, shared: SharedT) -> OutcomeT:
        """The attempt's episode (its sandbox extras and the agent's view are the kind's to give)."""
        ...

    def judge(self, task: TaskT_contra, outcome: OutcomeT, shared: SharedT) -> VerdictT:
        """The verdict on an episode the infrastructure did not spoil."""
        ...

    def spoiled(self, verdict: VerdictT) -> tuple[ErrorKind, str] | None:
        """Why the infrastructure spoiled the judging, and how (then it is judged again), or None."""
        ...

    def learn(self, task: TaskT_contra, attempt: Attempt, verdict: VerdictT, outcome: OutcomeT) -> None:
        """What the run learns from a judged episode (with ``attempt.memory``)."""
        ...

    def row(
        self, task: TaskT_contra, attempt: Attempt, outcome: EpisodeOutcome, verdict: VerdictT | None
    ) -> ResultRow:
        """The attempt's row (what the kind keeps beyond the verdict goes in its ``detail``); ``outcome`` is a plain
        ``EpisodeOutcome`` when no episode ran, ``verdict`` None when nothing was judged."""
        ...

    def recover(self, shared: SharedT) -> None:
        """Before a spoiled try is run again: drop what of ``shared`` the fault may have broken."""
        ...


def episode_error_kind(outcome: EpisodeOutcome) -> ErrorKind | None:
    """Why an episode ended without a submission (None when it submitted)."""
    if outcome.submitted:
        return None
    return ErrorKind.of_stop(outcome.stop_reason)
