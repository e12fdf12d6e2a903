"""Web tasks: every task in its own episode against a browser sandbox, scored by the page.

Each worker thread keeps one web sandbox (one Chromium) and starts a fresh, seeded episode on it per task; the
agent gets a fresh sandbox every episode. A fault of the browser's sandbox spoils the try (recorded and tried
again on a fresh one, as for any infrastructure fault). Rows go to ``<run>/results.sqlite`` like coding rows
(``passed`` is the page's verdict, ``score`` its raw reward clipped to [0, 1]); the row's ``detail`` keeps the
episode's record (the page's raw and time-decayed rewards, its steps and how it ended). Web episodes are not seeded, and read no memory.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from agentevo.agents import EpisodeOutcome
from agentevo.agents.episode import web_seed_agent_dir
from agentevo.config import AgentevoConfig
from agentevo.contract import StopReason
from agentevo.evaluate.results import ErrorKind, ResultRow
from agentevo.evaluate.web import WebScore
from agentevo.kinds.base import Attempt, TaskKind
from agentevo.tasks.miniwob import WebTask
from agentevo.tasks.suites import is_web_suite
from agentevo.web.env import WebEnv
from agentevo.web.episode import WebEpisodeOutcome, run_web_episode


class WebEnvs:
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


class WebKind:
    """The web family: the page judges, and a broken browser sandbox is replaced before a retry."""

    name = "web"
    reads_memory = False

    def claims(self, suite: str) -> bool:
        return is_web_suite(suite)

    def seed_dir(self) -> Path:
        return web_seed_agent_dir()

    @contextlib.contextmanager
    def open_shared(self, config: AgentevoConfig, size: int, run_id: str) -> Iterator[WebEnvs]:
        envs = WebEnvs()
        try:
            yield envs
        finally:
            envs.close()

    def play(self, task: WebTask, attempt: Attempt, shared: WebEnvs) -> WebEpisodeOutcome:
        try:
            env = shared.get()
        except Exception as exc:  # noqa: BLE001 - a browser that did not start spoils this try only
            return WebEpisodeOutcome(
                task_id=task.id, stop_reason=StopReason.docker_error, error=f"web sandbox: {exc}"
            )
        return run_web_episode(
            task,
            attempt.agent_dir,
            attempt.gateway,
            env,
            budget=attempt.budget,
            agent_id=attempt.agent_id,
            episode_id=attempt.episode_id,
        )

    def judge(self, task: WebTask, outcome: WebEpisodeOutcome, shared: WebEnvs) -> WebScore | None:
        return outcome.score

    def spoiled(self, verdict: WebScore | None) -> tuple[ErrorKind, str] | None:
        return None  # the page's reward was read in the episode; a fault there spoiled the episode itself

    def learn(
        self, task: WebTask, attempt: Attempt, verdict: WebScore | None, outcome: WebEpisodeOutcome
    ) -> None:
        """Nothing: web runs read no memory."""

    def row(
        self, task: WebTask, attempt: Attempt, outcome: EpisodeOutcome, verdict: WebScore | None
    ) -> ResultRow:
        # A plain outcome: the backbone was given up on before the episode started.
        if not isinstance(outcome, WebEpisodeOutcome):
            outcome = WebEpisodeOutcome(task_id=task.id, stop_reason=outcome.stop_reason, error=outcome.error)
        return web_row(
            task, outcome, run_id=attempt.run.run_id, agent_id=attempt.agent_id, attempt=attempt.index
        )

    def recover(self, shared: WebEnvs) -> None:
        shared.drop()


KIND: TaskKind[WebTask, WebEnvs, WebEpisodeOutcome, WebScore | None] = WebKind()


def web_row(
    task: WebTask, outcome: WebEpisodeOutcome, *, run_id: str, agent_id: str, attempt: int
) -> ResultRow:
    """The attempt's row: the page's verdict, or why there is none (the episode ended before the page did)."""
    score = outcome.score
    if score is not None and score.done and not outcome.stop_reason.infrastructure:
        kind = None if score.passed else ErrorKind.tests_failed
    else:
        kind = ErrorKind.of_stop(outcome.stop_reason)
    return ResultRow(
        run_id=run_id,
        agent_id=agent_id,
        task_id=task.id,
        suite=task.suite,
        attempt=attempt,
        passed=bool(score and score.passed),
        score=score.score if score else 0.0,
        tokens=outcome.tokens,
        seconds=outcome.seconds,
        error_kind=kind,
        detail=outcome.model_dump(mode="json", exclude={"log_tail", "task_id", "tokens", "seconds"}),
    )
