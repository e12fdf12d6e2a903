"""Run an agent over a suite: isolated episodes in parallel, each scored by the evaluator.

This is what ``agentevo run`` does and what evolution calls to score a candidate agent. Coding tasks are judged by
the evaluator on the episode's final workspace; web tasks (``orchestrate.web``) by the page's own reward. An attempt the
infrastructure spoils (the backbone died, Docker failed, the evaluation sandbox broke) is recorded as a spoiled
try and run again, up to ``resilience.attempt_retries`` times; if every try is spoiled its row carries an
infrastructure error kind, which scores leave out. The agent's own failures are never retried.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentevo.agents import EpisodeOutcome, run_isolated
from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.evaluate.evaluator import EvalResult, Evaluator, workspace_files
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.gateway import Backend, Gateway
from agentevo.orchestrate.attempts import Finished, SuiteRun, Tries, episode_id_of
from agentevo.orchestrate.scoring import outcome_row
from agentevo.runs import CHECKPOINTS_DIR, RESULTS_DB, RunDir
from agentevo.sandbox import SandboxPool
from agentevo.serving.backbone import open_backend, request_retry
from agentevo.tasks import Task
from agentevo.tasks.miniwob import WebTask
from agentevo.tasks.suites import SuiteError

if TYPE_CHECKING:  # memory loads Chroma: only runs with memory on import it
    from agentevo.memory.episodes import PinnedLessons, RunMemory


class RunInterrupted(Exception):
    """Ctrl-C stopped the run: no new episode started, and the rows of the finished ones are kept."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"interrupted after {finished} of {total} episodes; their rows are kept")
        self.finished = finished
        self.total = total


class CodingRun(SuiteRun[Task, Evaluator, EpisodeOutcome, EvalResult]):
    """Coding tasks: an isolated episode each, judged by the evaluator's hidden tests on its final workspace."""

    @staticmethod
    @contextlib.contextmanager
    def open_shared(config: AgentevoConfig, size: int, run_id: str) -> Iterator[Evaluator]:
        """The evaluator, on a pool of up to ``size`` warm sandboxes started while the episodes run."""
        with SandboxPool(config.sandbox, size=size, run_id=run_id) as warm:
            yield Evaluator(pool=warm)

    def _learn(self, task: Task, attempt: int, verdict: EvalResult, outcome: EpisodeOutcome) -> None:
        """With memory on: the verdict counts on the lessons the episode read, and the episode becomes a case,
        with the solution the hidden tests passed."""
        if self.memory is not None:
            episode_id = episode_id_of(task, attempt)
            self.memory.after_episode(
                task_id=task.id,
                task=task.instructions,
                episode_id=episode_id,
                passed=verdict.passed,
                score=verdict.score,
                served=self.gateway.lessons_served.get(episode_id, []),
                solution=_solution(task, outcome) if verdict.passed else "",
                node_id=self.agent_id,
            )

    def _episode(self, task: Task, attempt: int) -> EpisodeOutcome:
        return run_isolated(
            task,
            self.agent_dir,
            self.gateway,
            sandbox_config=self.config.sandbox,
            cache_dir=self.config.cache_dir,
            budget=self.budget,
            agent_id=self.agent_id,
            episode_id=episode_id_of(task, attempt),
            checkpoint_dir=self.run.path / CHECKPOINTS_DIR,
            seed=None if self.seed is None else attempt_seed(self.seed, self.agent_id, task.id, attempt),
        )

    def _judge(self, task: Task, outcome: EpisodeOutcome, tries: Tries) -> EvalResult:
        """The evaluator's verdict; an evaluation the infrastructure spoiled is run again on the same workspace."""
        verdict = self.shared.evaluate(task, outcome.workspace_tar)
        while verdict.error_kind is not None and verdict.error_kind.is_infrastructure:
            if not tries.record(verdict.error_kind, verdict.feedback):
                break
            self._wait_for_recovery(verdict.error_kind)
            verdict = self.shared.evaluate(task, outcome.workspace_tar)
        return verdict

    def _finished(
        self, task: Task, outcome: EpisodeOutcome, verdict: EvalResult | None, attempt: int
    ) -> Finished:
        row = outcome_row(
            task, outcome, verdict, run_id=self.run.run_id, agent_id=self.agent_id, attempt=attempt
        )
        return row, row


def attempt_seed(seed: int, agent_id: str, task_id: str, attempt: int) -> int:
    """The sampling seed of one attempt of a seeded run: its own for every (agent, task, attempt), the same when
    the attempt is run again."""
    return zlib.crc32(f"{seed}:{agent_id}:{task_id}:{attempt}".encode()) & 0x7FFFFFFF


def run_suite(
    config: AgentevoConfig,
    tasks: Sequence[Task | WebTask],
    *,
    agent_dir: Path,
    run: RunDir,
    agent_id: str = "seed",
    attempts: int = 1,
    parallel: int = 2,
    budget: EpisodeBudget | None = None,
    on_result: Callable[[ResultRow], None] = lambda row: None,
    backend: Backend | None = None,
    memory: RunMemory | PinnedLessons | None = None,
    only: Collection[tuple[str, int]] | None = None,
    seed: int | None = None,
) -> list[ResultRow]:
    """Every task ``attempts`` times, ``parallel`` episodes at once; rows go to ``<run>/results.sqlite``.

    ``only`` keeps the (task id, attempt) pairs to run (a resumed comparison leaves out those it has rows for).
    ``seed`` seeds the model calls of each coding attempt (``attempt_seed``; web episodes are not seeded).

    Web tasks (all of ``tasks`` or none) are played against a browser sandbox per worker and scored by the page
    (see :mod:`agentevo.orchestrate.web`). For coding tasks the hidden tests run in warm sandboxes (a pool of up to ``parallel``, started while the episodes run), each used
    once. ``backend`` replaces the configured backbone (a scripted model for tests and benchmarks). With
    ``memory``, agents read lessons through the gateway and every scored episode is learnt from
    (:class:`RunMemory`). Raises :class:`RunInterrupted` on Ctrl-C, once the gateway has cut off the calls in
    flight and the running episodes have ended; ``run.json`` then says so.
    """
    kind = _run_kind(tasks, memory)
    store = ResultsStore(run.path / RESULTS_DB)
    run.describe(
        agent_id=agent_id, agent_dir=str(agent_dir), tasks=len(tasks), attempts=attempts, started=time.time()
    )
    rows: list[ResultRow] = []
    episodes = [(t, a) for t in tasks for a in range(attempts) if only is None or (t.id, a) in only]
    backends = contextlib.nullcontext(backend) if backend else open_backend(config, concurrent=parallel > 1)
    retry = request_retry(config.resilience)
    with (
        backends as served,
        Gateway(served, run_dir=run.path, run_id=run.run_id, retry=retry, memory=memory) as gateway,
        kind.open_shared(config, min(parallel, len(episodes)), run.run_id) as shared,
        ThreadPoolExecutor(max_workers=parallel) as workers,
    ):
        suite = kind(
            config,
            agent_dir=agent_dir,
            run=run,
            agent_id=agent_id,
            budget=budget,
            store=store,
            gateway=gateway,
            backend=served,
            shared=shared,
            memory=memory,
            seed=seed,
        )
        futures = [workers.submit(suite.attempt, task, attempt) for task, attempt in episodes]
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


def _solution(task: Task, outcome: EpisodeOutcome) -> str:
    """The solution file of the episode's final workspace ('' when it is missing or not text)."""
    content, _ = workspace_files(outcome.workspace_tar, task.solution_file).get(task.solution_file, (b"", 0))
    try:
        return content.decode()
    except UnicodeDecodeError:
        return ""


def _run_kind(
    tasks: Sequence[Task | WebTask], memory: RunMemory | PinnedLessons | None
) -> type[SuiteRun[Any, Any, Any, Any]]:
    """How these tasks are run: as coding tasks, or (all of them web tasks) in browser sandboxes (chosen here, at
    run time: each kind's own types are checked inside it, not across this choice)."""
    web = [isinstance(task, WebTask) for task in tasks]
    if not any(web):
        return CodingRun
    if not all(web):
        raise SuiteError(
            "a run is either all web tasks or none: run the web suite and the coding suite apart"
        )
    if memory is not None:
        raise SuiteError("experience memory is not available for web suites yet; run them with --no-memory")
    from agentevo.orchestrate.web import WebSuiteRun  # the browser's pieces load only for web runs

    return WebSuiteRun


def _collect(
    futures: list[Future[Finished | None]],
    store: ResultsStore,
    run: RunDir,
    rows: list[ResultRow],
    on_result: Callable[[ResultRow], None],
) -> None:
    for future in as_completed(futures):
        finished = future.result()
        if finished is None:
            continue
        row, record = finished
        store.add(row)
        run.append(record)
        rows.append(row)
        on_result(row)


def _interrupt(
    suite: SuiteRun[Any, Any, Any, Any],
    futures: list[Future[Finished | None]],
    gateway: Gateway,
    workers: ThreadPoolExecutor,
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
