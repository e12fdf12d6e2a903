"""Run an agent over a suite: isolated episodes in parallel, each judged as its task kind says.

This is what ``agentevo run`` does and what evolution calls to score a candidate agent. The tasks' kind
(``agentevo.kinds``: coding tasks are judged by the evaluator's hidden tests, web tasks by the page) plays and
judges each episode; this module knows no family. An attempt the
infrastructure spoils (the backbone died, Docker failed, the evaluation sandbox broke) is recorded as a spoiled
try and run again, up to ``resilience.attempt_retries`` times; if every try is spoiled its row carries an
infrastructure error kind, which scores leave out. The agent's own failures are never retried.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ResultRow, ResultsStore, export_jsonl
from agentevo.gateway import Backend, Gateway
from agentevo.kinds import AnyKind, SuiteTask, kind_of
from agentevo.orchestrate.attempts import SuiteRun
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.serving.backbone import open_backend, request_retry
from agentevo.tasks.suites import SuiteError

if TYPE_CHECKING:  # memory loads Chroma: only runs with memory on import it
    from agentevo.memory.episodes import PinnedLessons, RunMemory


class RunInterrupted(Exception):
    """Ctrl-C stopped the run: no new episode started, and the rows of the finished ones are kept."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"interrupted after {finished} of {total} episodes; their rows are kept")
        self.finished = finished
        self.total = total


def run_suite(
    config: AgentevoConfig,
    tasks: Sequence[SuiteTask],
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
    """Every task ``attempts`` times, ``parallel`` episodes at once; rows go to ``<run>/results.sqlite`` as each
    attempt finishes, and ``<run>/results.jsonl`` is written from it when the run ends (``export_jsonl``).

    ``only`` keeps the (task id, attempt) pairs to run (a resumed comparison leaves out those it has rows for).
    ``seed`` seeds the model calls of each attempt (``attempt_seed``), where the tasks' kind seeds its episodes.

    The tasks are all of one kind (``agentevo.kinds``), which plays and judges them with what its workers share
    (coding: an evaluator on warm sandboxes, up to ``parallel``; web: a browser sandbox per worker). ``backend`` replaces the configured backbone (a scripted model for tests and benchmarks). With
    ``memory``, agents read lessons through the gateway and every scored episode is learnt from
    (:class:`RunMemory`). Raises :class:`RunInterrupted` on Ctrl-C, once the gateway has cut off the calls in
    flight and the running episodes have ended; ``run.json`` then says so.
    """
    kind = _kind_of(tasks, memory)
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
        suite: SuiteRun[Any, Any, Any, Any] = SuiteRun(
            kind,
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
            _collect(futures, store, rows, on_result)
        except KeyboardInterrupt:
            _interrupt(suite, futures, gateway, workers)
            run.describe(interrupted=time.time(), episodes=len(rows))
            raise RunInterrupted(len(rows), len(futures)) from None
        finally:
            _describe_backbone(run, served)
            export_jsonl(run.path)
    run.describe(finished=time.time(), passed=sum(r.passed for r in rows), episodes=len(rows))
    return rows


def _kind_of(tasks: Sequence[SuiteTask], memory: RunMemory | PinnedLessons | None) -> AnyKind:
    """The kind these tasks are run as (chosen here, at run time: each kind's own types are checked inside it)."""
    kind = kind_of(tasks)
    if memory is not None and not kind.reads_memory:
        raise SuiteError(
            f"experience memory is not available for {kind.name} suites yet; run them with --no-memory"
        )
    return kind


def _collect(
    futures: list[Future[ResultRow | None]],
    store: ResultsStore,
    rows: list[ResultRow],
    on_result: Callable[[ResultRow], None],
) -> None:
    for future in as_completed(futures):
        row = future.result()
        if row is None:
            continue
        store.add(row)
        rows.append(row)
        on_result(row)


def _interrupt(
    suite: SuiteRun[Any, Any, Any, Any],
    futures: list[Future[ResultRow | None]],
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
