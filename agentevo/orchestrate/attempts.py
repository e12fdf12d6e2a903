"""What every task kind's run shares: an attempt tried again while the infrastructure spoils it, and Ctrl-C.

:class:`SuiteRun` asks the run's kind (``agentevo.kinds``) how an episode is played, judged, learnt from and
recorded, and what its workers share; the tries, retries and Ctrl-C are the same for every kind.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from agentevo.agents import EpisodeOutcome, StopReason
from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.contract import Culprit
from agentevo.evaluate.results import ErrorKind, ResultRow, ResultsStore, SpoiledTry
from agentevo.gateway import Backend, Gateway
from agentevo.kinds import Attempt, SuiteTask, TaskKind
from agentevo.runs import RunDir
from agentevo.sandbox import provider_for
from agentevo.serving.backbone import request_retry

if TYPE_CHECKING:  # memory loads Chroma: only runs with memory on import it
    from agentevo.memory.episodes import PinnedLessons, RunMemory


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


class SuiteRun(Generic[TaskT, SharedT, OutcomeT, VerdictT]):
    """One ``run_suite`` call: its kind, the shared pieces its episodes use, and how an attempt is tried."""

    def __init__(
        self,
        kind: TaskKind[TaskT, SharedT, OutcomeT, VerdictT],
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
        self.kind, self.config = kind, config
        self.agent_dir, self.run, self.agent_id = agent_dir, run, agent_id
        self.seed = seed
        self.budget, self.store, self.gateway, self.backend = budget, store, gateway, backend
        self.shared = shared
        self.memory = memory
        self.stopping = threading.Event()

    def attempt(self, task: TaskT, attempt: int) -> ResultRow | None:
        """The attempt's final row: tried again while the infrastructure spoils it (None once stopping)."""
        limit = self.config.resilience.attempt_retries
        tries = Tries(self.store, self.run.run_id, self.agent_id, task, attempt, limit)
        setup = self._setup(task, attempt)
        while not self.stopping.is_set():
            given_up = self._backbone_failure()
            if given_up is not None:  # no episode can succeed any more: say so, without starting one
                tries.record(ErrorKind.backbone_error, given_up, retry=False)
                return self._spoiled_row(task, setup, StopReason.backbone_error, given_up)
            outcome = self.kind.play(task, setup, self.shared)
            if self.stopping.is_set():
                return None
            if not outcome.stop_reason.infrastructure:
                verdict = self._judge(task, outcome, tries)
                self.kind.learn(task, setup, verdict, outcome)
                return self.kind.row(task, setup, outcome, verdict)
            kind = ErrorKind.of_stop(outcome.stop_reason)
            if not tries.record(kind, outcome.error or outcome.stop_reason.value):
                return self.kind.row(task, setup, outcome, None)
            self._wait_for_recovery(kind)
        return None

    def _setup(self, task: TaskT, attempt: int) -> Attempt:
        """What the kind is given to play the attempt: the run's pieces, its episode id and sampling seed."""
        return Attempt(
            config=self.config,
            agent_dir=self.agent_dir,
            agent_id=self.agent_id,
            gateway=self.gateway,
            run=self.run,
            budget=self.budget,
            memory=self.memory,
            index=attempt,
            episode_id=episode_id_of(task, attempt),
            seed=None if self.seed is None else attempt_seed(self.seed, self.agent_id, task.id, attempt),
        )

    def _judge(self, task: TaskT, outcome: OutcomeT, tries: Tries) -> VerdictT:
        """The kind's verdict; a judging the infrastructure spoiled is done again on the same outcome."""
        verdict = self.kind.judge(task, outcome, self.shared)
        spoiled = self.kind.spoiled(verdict)
        while spoiled is not None:
            if not tries.record(*spoiled):
                break
            self._wait_for_recovery(spoiled[0])
            verdict = self.kind.judge(task, outcome, self.shared)
            spoiled = self.kind.spoiled(verdict)
        return verdict

    def _wait_for_recovery(self, kind: ErrorKind) -> None:
        """Before a retry, let the kind drop what broke, and give the failed part (bounded) time to come back."""
        self.kind.recover(self.shared)
        if kind.culprit is Culprit.sandbox:
            provider_for(self.config.sandbox).healthy(self.config.resilience.docker_wait)
        health = self.backend.health
        if kind.culprit is Culprit.backbone and health is not None:
            health.wait_ready(request_retry(self.config.resilience).ready_timeout)

    def _backbone_failure(self) -> str | None:
        health = self.backend.health
        return health.failure if health is not None else None

    def _spoiled_row(self, task: TaskT, setup: Attempt, reason: StopReason, detail: str) -> ResultRow:
        outcome = EpisodeOutcome(task_id=task.id, mode="isolated", stop_reason=reason, error=detail)
        return self.kind.row(task, setup, outcome, None)


def episode_id_of(task: SuiteTask, attempt: int) -> str:
    """An attempt's episode id: its task id with no slash (it names files), then the attempt."""
    return f"{task.id.replace('/', '-')}-{attempt}"


def attempt_seed(seed: int, agent_id: str, task_id: str, attempt: int) -> int:
    """The sampling seed of one attempt of a seeded run: its own for every (agent, task, attempt), the same when
    the attempt is run again."""
    return zlib.crc32(f"{seed}:{agent_id}:{task_id}:{attempt}".encode()) & 0x7FFFFFFF
