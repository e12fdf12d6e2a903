"""Run an agent over a suite: isolated episodes in parallel, each scored by the evaluator.

This is what ``agentevo run`` does and what evolution calls to score a candidate agent. An attempt the
infrastructure spoils (the backbone died, Docker failed, the evaluation sandbox broke) is recorded as a spoiled
try and run again, up to ``resilience.attempt_retries`` times; if every try is spoiled its row carries an
infrastructure error kind, which scores leave out. The agent's own failures are never retried.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

import docker
import docker.errors
import requests

from agentevo.agents import EpisodeOutcome, StopReason, run_isolated
from agentevo.agents.seed import AgentConfig
from agentevo.config import AgentevoConfig
from agentevo.evaluate.evaluator import EvalResult, Evaluator
from agentevo.evaluate.results import ErrorKind, ResultRow, ResultsStore, SpoiledTry
from agentevo.gateway import Backend, Gateway
from agentevo.gateway.launch import open_backend, request_retry
from agentevo.runs import RunDir
from agentevo.tasks import Task

RESULTS_DB = "results.sqlite"
DOCKER_POLL_S = 1.0
DOCKER_PING_TIMEOUT_S = 5.0

_KINDS = {
    StopReason.step_budget: ErrorKind.step_budget,
    StopReason.token_budget: ErrorKind.token_budget,
    StopReason.timeout: ErrorKind.timeout,
    StopReason.agent_crash: ErrorKind.agent_crash,
    StopReason.llm_error: ErrorKind.agent_crash,  # a call the gateway refused as the agent's own fault
    StopReason.stopped: ErrorKind.no_submit,
    StopReason.backbone_error: ErrorKind.backbone_error,
    StopReason.gateway_error: ErrorKind.gateway_error,
    StopReason.docker_error: ErrorKind.docker_error,
}


class RunInterrupted(Exception):
    """Ctrl-C stopped the run: no new episode started, and the rows of the finished ones are kept."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"interrupted after {finished} of {total} episodes; their rows are kept")
        self.finished = finished
        self.total = total


def episode_error_kind(outcome: EpisodeOutcome) -> ErrorKind | None:
    """Why an episode ended without a submission (None when it submitted)."""
    if outcome.submitted:
        return None
    return _KINDS[outcome.stop_reason]


def score_episode(
    task: Task, outcome: EpisodeOutcome, evaluator: Evaluator, *, run_id: str, agent_id: str, attempt: int
) -> ResultRow:
    """Evaluate the final workspace: the hidden tests decide ``passed`` and ``score``, submitted or not.

    ``error_kind`` says why an episode ended other than by submission (budget, crash, timeout), else
    what the evaluator found (no solution, import error, failing tests).
    """
    return _row(
        task,
        outcome,
        evaluator.evaluate(task, outcome.workspace_tar),
        run_id=run_id,
        agent_id=agent_id,
        attempt=attempt,
    )


def _row(
    task: Task,
    outcome: EpisodeOutcome,
    verdict: EvalResult | None,
    *,
    run_id: str,
    agent_id: str,
    attempt: int,
) -> ResultRow:
    """The attempt's row; without a verdict (the episode was spoiled, so nothing was evaluated) it did not pass."""
    return ResultRow(
        run_id=run_id,
        agent_id=agent_id,
        task_id=task.id,
        suite=task.suite,
        attempt=attempt,
        passed=verdict.passed if verdict else False,
        score=verdict.score if verdict else 0.0,
        tokens=outcome.tokens,
        seconds=outcome.seconds + (verdict.elapsed if verdict else 0.0),
        error_kind=episode_error_kind(outcome) or (verdict.error_kind if verdict else None),
    )


def wait_for_docker(timeout: float) -> bool:
    """Whether a Docker engine answers within ``timeout`` seconds (after it failed a sandbox)."""
    deadline = time.monotonic() + timeout
    while not _docker_answers():
        if time.monotonic() >= deadline:
            return False
        time.sleep(DOCKER_POLL_S)
    return True


def _docker_answers() -> bool:
    """Asked on a new connection: a pooled one can still reach an engine that is shutting down, whose socket is
    already gone for everyone else (seen while dockerd restarts)."""
    try:
        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False
    finally:
        client.close()


class _Tries:
    """The tries of one attempt: every one the infrastructure spoiled is recorded, and retried up to the limit."""

    def __init__(
        self, store: ResultsStore, run_id: str, agent_id: str, task: Task, attempt: int, limit: int
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
                run_id=self.run_id, agent_id=self.agent_id, task_id=self.task.id, attempt=self.attempt,
                try_index=self.spoiled, error_kind=kind, detail=detail[:2000], retried=retried,
            )
        )  # fmt: skip
        self.spoiled += 1
        return retried


class _SuiteRun:
    """One ``run_suite`` call: the shared pieces its episodes use, and how an attempt is tried."""

    def __init__(
        self,
        config: AgentevoConfig,
        *,
        agent_dir: Path,
        run: RunDir,
        agent_id: str,
        agent_config: AgentConfig | None,
        store: ResultsStore,
        gateway: Gateway,
        backend: Backend,
    ) -> None:
        self.config, self.agent_dir, self.run, self.agent_id = config, agent_dir, run, agent_id
        self.agent_config, self.store, self.gateway, self.backend = agent_config, store, gateway, backend
        self.evaluator = Evaluator(config.sandbox)
        self.stopping = threading.Event()

    def attempt(self, task: Task, attempt: int) -> ResultRow | None:
        """The attempt's final row: tried again while the infrastructure spoils it (None once stopping)."""
        limit = self.config.resilience.attempt_retries
        tries = _Tries(self.store, self.run.run_id, self.agent_id, task, attempt, limit)
        while not self.stopping.is_set():
            given_up = self._backbone_failure()
            if given_up is not None:  # no episode can succeed any more: say so, without starting one
                tries.record(ErrorKind.backbone_error, given_up, retry=False)
                return self._spoiled_row(task, attempt, StopReason.backbone_error, given_up)
            outcome = self._episode(task, attempt)
            if self.stopping.is_set():
                return None
            if not outcome.stop_reason.infrastructure:
                verdict = self._evaluate(task, outcome, tries)
                return _row(
                    task, outcome, verdict, run_id=self.run.run_id, agent_id=self.agent_id, attempt=attempt
                )
            kind = _KINDS[outcome.stop_reason]
            if not tries.record(kind, outcome.error or outcome.stop_reason.value):
                return _row(
                    task, outcome, None, run_id=self.run.run_id, agent_id=self.agent_id, attempt=attempt
                )
            self._wait_for_recovery(kind)
        return None

    def _episode(self, task: Task, attempt: int) -> EpisodeOutcome:
        return run_isolated(
            task,
            self.agent_dir,
            self.gateway,
            sandbox_config=self.config.sandbox,
            agent_config=self.agent_config,
            agent_id=self.agent_id,
            episode_id=f"{task.id.replace('/', '-')}-{attempt}",
            checkpoint_dir=self.run.path / "checkpoints",
        )

    def _evaluate(self, task: Task, outcome: EpisodeOutcome, tries: _Tries) -> EvalResult:
        """The evaluator's verdict; an evaluation the infrastructure spoiled is run again on the same workspace."""
        verdict = self.evaluator.evaluate(task, outcome.workspace_tar)
        while verdict.error_kind is not None and verdict.error_kind.is_infrastructure:
            if not tries.record(verdict.error_kind, verdict.feedback):
                break
            self._wait_for_recovery(verdict.error_kind)
            verdict = self.evaluator.evaluate(task, outcome.workspace_tar)
        return verdict

    def _wait_for_recovery(self, kind: ErrorKind) -> None:
        """Before a retry, give the failed part (bounded) time to come back."""
        if kind in (ErrorKind.docker_error, ErrorKind.sandbox_error):
            wait_for_docker(self.config.resilience.docker_wait)
        health = self.backend.health
        if kind is ErrorKind.backbone_error and health is not None:
            health.wait_ready(request_retry(self.config.resilience).ready_timeout)

    def _backbone_failure(self) -> str | None:
        health = self.backend.health
        return health.failure if health is not None else None

    def _spoiled_row(self, task: Task, attempt: int, reason: StopReason, detail: str) -> ResultRow:
        outcome = EpisodeOutcome(task_id=task.id, mode="isolated", stop_reason=reason, error=detail)
        return _row(task, outcome, None, run_id=self.run.run_id, agent_id=self.agent_id, attempt=attempt)


def run_suite(
    config: AgentevoConfig,
    tasks: list[Task],
    *,
    agent_dir: Path,
    run: RunDir,
    agent_id: str = "seed",
    attempts: int = 1,
    parallel: int = 2,
    agent_config: AgentConfig | None = None,
    on_result: Callable[[ResultRow], None] = lambda row: None,
    backend: Backend | None = None,
) -> list[ResultRow]:
    """Every task ``attempts`` times, ``parallel`` episodes at once; rows go to ``<run>/results.sqlite``.

    ``backend`` replaces the configured backbone (a scripted model for tests and benchmarks). Raises
    :class:`RunInterrupted` on Ctrl-C, once the gateway has cut off the calls in flight and the running
    episodes have ended; ``run.json`` then says so.
    """
    store = ResultsStore(run.path / RESULTS_DB)
    run.describe(
        agent_id=agent_id, agent_dir=str(agent_dir), tasks=len(tasks), attempts=attempts, started=time.time()
    )
    rows: list[ResultRow] = []
    backends = contextlib.nullcontext(backend) if backend else open_backend(config, concurrent=parallel > 1)
    retry = request_retry(config.resilience)
    with (
        backends as served,
        Gateway(served, run_dir=run.path, run_id=run.run_id, retry=retry) as gateway,
        ThreadPoolExecutor(max_workers=parallel) as workers,
    ):
        suite = _SuiteRun(
            config, agent_dir=agent_dir, run=run, agent_id=agent_id, agent_config=agent_config, store=store,
            gateway=gateway, backend=served,
        )  # fmt: skip
        futures = [
            workers.submit(suite.attempt, task, attempt) for task in tasks for attempt in range(attempts)
        ]
        try:
            _collect(futures, store, run, rows, on_result)
        except KeyboardInterrupt:
            _interrupt(suite, futures, gateway, workers)
            run.describe(interrupted=time.time(), episodes=len(rows))
            raise RunInterrupted(len(rows), len(futures)) from None
        finally:
            _describe_backbone(run, served)
    run.describe(finished=time.time(), passed=sum(r.passed for r in rows), episodes=len(rows))
    return rows


def _collect(
    futures: list[Future[ResultRow | None]],
    store: ResultsStore,
    run: RunDir,
    rows: list[ResultRow],
    on_result: Callable[[ResultRow], None],
) -> None:
    for future in as_completed(futures):
        row = future.result()
        if row is None:
            continue
        store.add(row)
        run.append(row)
        rows.append(row)
        on_result(row)


def _interrupt(
    suite: _SuiteRun, futures: list[Future[ResultRow | None]], gateway: Gateway, workers: ThreadPoolExecutor
) -> None:
    """Stop for Ctrl-C: start nothing new, cut off the model calls in flight (so running agents end at once),
    and wait for the running episodes to end; their results are dropped."""
    suite.stopping.set()
    for future in futures:
        future.cancel()
    gateway.stop()
    workers.shutdown(wait=True, cancel_futures=True)


def _describe_backbone(run: RunDir, backend: Backend) -> None:
    """Note in ``run.json`` what happened to a watched backbone: restarts, and why it was given up on."""
    health = backend.health
    if health is None:
        return
    run.describe(
        backbone_restarts=health.restarts,
        backbone_restart_seconds=[round(s, 2) for s in health.restart_seconds],
        backbone_failure=health.failure,
    )
