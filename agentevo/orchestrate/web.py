"""Web tasks in ``run_suite``: every task in its own episode against a browser sandbox, scored by the page.

Each worker thread keeps one web sandbox (one Chromium) and starts a fresh, seeded episode on it per task; the
agent gets a fresh sandbox every episode. A fault of the browser's sandbox spoils the try (recorded and tried
again on a fresh one, as for any infrastructure fault). Rows go to ``<run>/results.sqlite`` like coding rows
(``passed`` is the page's verdict, ``score`` its raw reward clipped to [0, 1]); ``results.jsonl`` keeps the page's
raw and time-decayed rewards beside the episode's cost.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from agentevo.agents import EpisodeOutcome
from agentevo.config import AgentevoConfig
from agentevo.contract import StopReason
from agentevo.evaluate.results import ErrorKind, ResultRow
from agentevo.evaluate.web import WebScore
from agentevo.orchestrate.attempts import Finished, SuiteRun, Tries, episode_id_of
from agentevo.orchestrate.scoring import KINDS
from agentevo.tasks.miniwob import WebTask
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
    )


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


class WebSuiteRun(SuiteRun[WebTask, WebEnvs, WebEpisodeOutcome, WebScore | None]):
    """``run_suite`` on web tasks: the page judges, and a broken browser sandbox is replaced before a retry."""

    @staticmethod
    @contextlib.contextmanager
    def open_shared(config: AgentevoConfig, size: int, run_id: str) -> Iterator[WebEnvs]:
        envs = WebEnvs()
        try:
            yield envs
        finally:
            envs.close()

    def _episode(self, task: WebTask, attempt: int) -> WebEpisodeOutcome:
        try:
            env = self.shared.get()
        except Exception as exc:  # noqa: BLE001 - a browser that did not start spoils this try only
            return WebEpisodeOutcome(
                task_id=task.id, stop_reason=StopReason.docker_error, error=f"web sandbox: {exc}"
            )
        return run_web_episode(
            task,
            self.agent_dir,
            self.gateway,
            env,
            budget=self.budget,
            agent_id=self.agent_id,
            episode_id=episode_id_of(task, attempt),
        )

    def _judge(self, task: WebTask, outcome: WebEpisodeOutcome, tries: Tries) -> WebScore | None:
        return outcome.score

    def _finished(
        self, task: WebTask, outcome: EpisodeOutcome, verdict: WebScore | None, attempt: int
    ) -> Finished:
        if not isinstance(
            outcome, WebEpisodeOutcome
        ):  # the backbone was given up on before the episode started
            outcome = WebEpisodeOutcome(task_id=task.id, stop_reason=outcome.stop_reason, error=outcome.error)
        row = web_row(task, outcome, run_id=self.run.run_id, agent_id=self.agent_id, attempt=attempt)
        return row, {**outcome.model_dump(mode="json", exclude={"log_tail"}), "attempt": attempt}

    def _wait_for_recovery(self, kind: ErrorKind) -> None:
        self.shared.drop()
        super()._wait_for_recovery(kind)
