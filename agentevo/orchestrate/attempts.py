"""What every task kind's run shares: an attempt tried again while the infrastructure spoils it, and Ctrl-C.

A kind (:class:`~agentevo.orchestrate.suite.CodingRun`, :class:`~agentevo.orchestrate.web.WebSuiteRun`) subclasses
:class:`SuiteRun` with how its episode is played, judged, learnt from and recorded; ``run_suite`` chooses the kind.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from agentevo.agents import EpisodeOutcome, StopReason
from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ErrorKind, ResultRow, ResultsStore, SpoiledTry
from agentevo.gateway import Backend, Gateway
from agentevo.orchestrate.scoring import KINDS
from agentevo.runs import RunDir
from agentevo.sandbox import provider_for
from agentevo.serving.backbone import request_retry

if TYPE_CHECKING:  # memory loads Chroma: only runs with memory on import it
    from agentevo.memory.episodes import PinnedLessons, RunMemory


class SuiteTask(Protocol):
    """What the tries of every task kind read of a task (a coding ``Task``, a ``WebTask``)."""

    @property
    def id(self) -> str: ...


TaskT = TypeVar("TaskT", bound=SuiteTask)
SharedT = TypeVar("SharedT")  # what a run's tries share: the evaluator, the browser sandboxes
OutcomeT = TypeVar("OutcomeT", bound=EpisodeOutcome)
VerdictT = TypeVar("VerdictT")


class Tries:
    """The tries of one attempt: every one the infrastructure spoiled is recorded, and retried up to the limit."""

    def __init__(
        self, store: ResultsStore, run_id: str, agent_id: str, task: SuiteTask, attempt: int, limit: int
    ) -> None:
        self.store, self.run_id, self.agent_id, self.task, self.attempt = (
            store,
            run_id,
            agent_id,
            task,
            attempt,
        )
        self.limit = limit
        self.spoiled = 0

    def record(self, kind: ErrorKind, detail: str, *, retry: bool = True) -> bool:
        """Note a spoiled try; True when it is to be tried again (else it was the last, and its row says so)."""
        retried = retry and self.spoiled < self.limit
        self.store.add_spoiled(
            SpoiledTry(
                run_id=self.run_id,
                agent_id=self.agent_id,
                task_id=self.task.id,
                attempt=self.attempt,
                try_index=self.spoiled,
                error_kind=kind,
                detail=detail[:2000],
                retried=retried,
            )
        )
        self.spoiled += 1
        return retried


Finished = tuple[ResultRow, dict | ResultRow]
"""An attempt's row, and what ``results.jsonl`` keeps of it (the row itself, or a web episode's fuller record)."""


class SuiteRun(Generic[TaskT, SharedT, OutcomeT, VerdictT]):
    """One ``run_suite`` call: the shared pieces its episodes use, and how an attempt is tried.

    A task kind changes how an episode is played (``_episode``), judged (``_judge``), learnt from (``_learn``) and
    recorded (``_finished``), and what its tries share (``open_shared``); the tries, retries and Ctrl-C are the
    same for every kind.
    """

    @staticmethod
    def open_shared(config: AgentevoConfig, size: int, run_id: str) -> AbstractContextManager[SharedT]:
        raise NotImplementedError

    def __init__(
        self,
        config: AgentevoConfig,
        *,
        agent_dir: Path,
        run: RunDir,
        agent_id: str,
        budget: EpisodeBudget | None,
        store: ResultsStore,
        gateway: Gateway,
        backend: Backend,
        shared: SharedT,
        memory: RunMemory | PinnedLessons | None = None,
        seed: int | None = None,
    ) -> None:
        self.config, self.agent_dir, self.run, self.agent_id = config, agent_dir, run, agent_id
        self.seed = seed
        self.budget, self.store, self.gateway, self.backend = budget, store, gateway, backend
        self.shared = shared
        self.memory = memory
        self.stopping = threading.Event()

    def attempt(self, task: TaskT, attempt: int) -> Finished | None:
        """The attempt's final row: tried again while the infrastructure spoils it (None once stopping)."""
        limit = self.config.resilience.attempt_retries
        tries = Tries(self.store, self.run.run_id, self.agent_id, task, attempt, limit)
        while not self.stopping.is_set():
            given_up = self._backbone_failure()
            if given_up is not None:  # no episode can succeed any more: say so, without starting one
                tries.record(ErrorKind.backbone_error, given_up, retry=False)
                return self._spoiled_row(task, attempt, StopReason.backbone_error, given_up)
            outcome = self._episode(task, attempt)
            if self.stopping.is_set():
                return None
            if not outcome.stop_reason.infrastructure:
                verdict = self._judge(task, outcome, tries)
                self._learn(task, attempt, verdict, outcome)
                return self._finished(task, outcome, verdict, attempt)
            kind = KINDS[outcome.stop_reason]
            if not tries.record(kind, outcome.error or outcome.stop_reason.value):
                return self._finished(task, outcome, None, attempt)
            self._wait_for_recovery(kind)
        return None

    def _episode(self, task: TaskT, attempt: int) -> OutcomeT:
        raise NotImplementedError

    def _judge(self, task: TaskT, outcome: OutcomeT, tries: Tries) -> VerdictT:
        raise NotImplementedError

    def _learn(self, task: TaskT, attempt: int, verdict: VerdictT, outcome: OutcomeT) -> None:
        """What the run learns from a judged episode: nothing, unless the kind reads experience memory."""

    def _finished(
        self, task: TaskT, outcome: EpisodeOutcome, verdict: VerdictT | None, attempt: int
    ) -> Finished:
        """The attempt's row; ``outcome`` is a plain ``EpisodeOutcome`` when no episode ran (``_spoiled_row``)."""
        raise NotImplementedError

    def _wait_for_recovery(self, kind: ErrorKind) -> None:
        """Before a retry, give the failed part (bounded) time to come back."""
        if kind in (ErrorKind.docker_error, ErrorKind.sandbox_error):
            provider_for(self.config.sandbox).healthy(self.config.resilience.docker_wait)
        health = self.backend.health
        if kind is ErrorKind.backbone_error and health is not None:
            health.wait_ready(request_retry(self.config.resilience).ready_timeout)

    def _backbone_failure(self) -> str | None:
        health = self.backend.health
        return health.failure if health is not None else None

    def _spoiled_row(self, task: TaskT, attempt: int, reason: StopReason, detail: str) -> Finished:
        outcome = EpisodeOutcome(task_id=task.id, mode="isolated", stop_reason=reason, error=detail)
        return self._finished(task, outcome, None, attempt)


def episode_id_of(task: SuiteTask, attempt: int) -> str:
    """An attempt's episode id: its task id with no slash (it names files), then the attempt."""
    return f"{task.id.replace('/', '-')}-{attempt}"
