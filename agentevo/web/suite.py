"""``agentevo run --suite miniwob...``: every web task in its own episode, scored by the page, rows to the results.

Each worker thread keeps one web sandbox (one Chromium) and starts a fresh, seeded episode on it per task; the
agent gets a fresh sandbox every episode. Rows go to ``<run>/results.sqlite`` like coding rows (``passed`` is
the page's verdict, ``score`` its raw reward clipped to [0, 1]); ``results.jsonl`` keeps the page's raw and
time-decayed rewards beside the episode's cost.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.contract import StopReason
from agentevo.evaluate.results import RESULTS_DB, ErrorKind, ResultRow, ResultsStore
from agentevo.gateway import Backend, Gateway
from agentevo.gateway.launch import open_backend, request_retry
from agentevo.orchestrate.scoring import KINDS
from agentevo.runs import RunDir
from agentevo.tasks.miniwob import WebTask
from agentevo.tasks.suites import SuiteError
from agentevo.web.env import WebEnv
from agentevo.web.episode import WebEpisodeOutcome, run_web_episode


def web_row(
    task: WebTask, outcome: WebEpisodeOutcome, *, run_id: str, agent_id: str, attempt: int
) -> ResultRow:
    """The attempt's row: the page's verdict, or why there is none (the episode ended before the page did)."""
    score = outcome.score
    if score is not None and score.done:
        kind = None if score.passed else ErrorKind.tests_failed
    else:
        kind = KINDS.get(outcome.stop_reason, ErrorKind.no_submit)
    if outcome.stop_reason.infrastructure:
        kind = KINDS[outcome.stop_reason]
    return ResultRow(
        run_id=run_id, agent_id=agent_id, task_id=task.id, suite=task.suite, attempt=attempt,
        passed=bool(score and score.passed), score=score.score if score else 0.0, tokens=outcome.tokens,
        seconds=outcome.seconds, error_kind=kind,
    )  # fmt: skip


class _Envs:
    """One web sandbox per worker thread, started on first use and closed at the end."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[WebEnv] = []
        self._lock = threading.Lock()

    def get(self) -> WebEnv:
        env = getattr(self._local, "env", None)
        if env is None:
            env = self._local.env = WebEnv.start()
            with self._lock:
                self._all.append(env)
        return env

    def drop(self) -> None:
        """Close this thread's sandbox (after a fault); the next ``get`` starts a fresh one."""
        env = getattr(self._local, "env", None)
        self._local.env = None
        if env is not None:
            with self._lock:
                self._all.remove(env)
            env.close()

    def close(self) -> None:
        for env in self._all:
            env.close()


def run_web_suite(
    config: AgentevoConfig,
    tasks: list[WebTask],
    *,
    agent_dir: Path,
    run: RunDir,
    agent_id: str = "seed",
    attempts: int = 1,
    parallel: int = 1,
    budget: EpisodeBudget | None = None,
    on_result: Callable[[ResultRow], None] = lambda row: None,
    backend: Backend | None = None,
    memory: object | None = None,
) -> list[ResultRow]:
    """Every web task ``attempts`` times, ``parallel`` at once; the rows, also in ``<run>/results.sqlite``.

    Experience memory (``memory``, as ``agentevo run`` passes it for coding suites) is not wired into web
    episodes yet: asking for it is an error rather than a run that silently goes without.
    """
    if memory is not None:
        raise SuiteError("experience memory is not available for web suites yet; run them with --no-memory")
    run.describe(
        agent_id=agent_id, agent_dir=str(agent_dir), tasks=len(tasks), attempts=attempts, started=time.time()
    )
    store = ResultsStore(run.path / RESULTS_DB)
    backends = contextlib.nullcontext(backend) if backend else open_backend(config, concurrent=parallel > 1)
    rows: list[ResultRow] = []
    lock = threading.Lock()
    with (
        backends as served,
        Gateway(
            served, run_dir=run.path, run_id=run.run_id, retry=request_retry(config.resilience)
        ) as gateway,
        _closing(_Envs()) as envs,
        ThreadPoolExecutor(max_workers=parallel) as workers,
    ):

        def attempt(task: WebTask, number: int) -> None:
            # What the infrastructure spoils is run again on a fresh browser sandbox, and never scored.
            for _ in range(1 + config.resilience.attempt_retries):
                try:
                    env = envs.get()
                except Exception as exc:  # noqa: BLE001 - a browser that did not start spoils this try only
                    outcome = WebEpisodeOutcome(
                        task_id=task.id, stop_reason=StopReason.docker_error, error=f"web sandbox: {exc}"
                    )
                else:
                    outcome = run_web_episode(task, agent_dir, gateway, env, budget=budget, agent_id=agent_id)
                if not outcome.stop_reason.infrastructure:
                    break
                envs.drop()
            row = web_row(task, outcome, run_id=run.run_id, agent_id=agent_id, attempt=number)
            store.add(row)
            run.append({**outcome.model_dump(mode="json", exclude={"log_tail"}), "attempt": number})
            with lock:
                rows.append(row)
            on_result(row)

        futures = [workers.submit(attempt, task, n) for task in tasks for n in range(attempts)]
        for future in futures:
            future.result()
    run.describe(finished=time.time(), passed=sum(r.passed for r in rows), episodes=len(rows))
    return rows


@contextlib.contextmanager
def _closing(envs: _Envs) -> Iterator[_Envs]:
    try:
        yield envs
    finally:
        envs.close()
