"""Coding tasks: files and instructions in, a solution file out, judged by the evaluator's hidden tests.

Every suite no other kind claims is of this kind. An episode is an isolated episode on the task's files; its final
workspace goes to the evaluator, which runs the hidden tests in warm sandboxes (a pool shared by the workers,
each sandbox used once). With memory on, the verdict counts on the lessons the episode read, and the episode
becomes a case.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from agentevo.agents import EpisodeOutcome, run_isolated
from agentevo.agents.episode import seed_agent_dir
from agentevo.config import AgentevoConfig
from agentevo.evaluate.evaluator import EvalResult, Evaluator, workspace_files
from agentevo.evaluate.results import ErrorKind, ResultRow
from agentevo.kinds.base import Attempt, TaskKind, episode_error_kind
from agentevo.runs import CHECKPOINTS_DIR
from agentevo.sandbox import SandboxPool
from agentevo.tasks import Task


class CodingKind:
    """The coding family."""

    name = "coding"
    reads_memory = True

    def claims(self, suite: str) -> bool:
        return True  # the default family: the registry asks it last

    def seed_dir(self) -> Path:
        return seed_agent_dir()

    @contextlib.contextmanager
    def open_shared(self, config: AgentevoConfig, size: int, run_id: str) -> Iterator[Evaluator]:
        """The evaluator, on a pool of up to ``size`` warm sandboxes started while the episodes run."""
        with SandboxPool(config.sandbox, size=size, run_id=run_id) as warm:
            yield Evaluator(pool=warm)

    def play(self, task: Task, attempt: Attempt, shared: Evaluator) -> EpisodeOutcome:
        return run_isolated(
            task,
            attempt.agent_dir,
            attempt.gateway,
            sandbox_config=attempt.config.sandbox,
            cache_dir=attempt.config.cache_dir,
            budget=attempt.budget,
            agent_id=attempt.agent_id,
            episode_id=attempt.episode_id,
            checkpoint_dir=attempt.run.path / CHECKPOINTS_DIR,
            seed=attempt.seed,
        )

    def judge(self, task: Task, outcome: EpisodeOutcome, shared: Evaluator) -> EvalResult:
        return shared.evaluate(task, outcome.workspace_tar)

    def spoiled(self, verdict: EvalResult) -> tuple[ErrorKind, str] | None:
        """An evaluation whose sandbox broke (not the solution's fault) is run again on the same workspace."""
        kind = verdict.error_kind
        return (kind, verdict.feedback) if kind is not None and kind.is_infrastructure else None

    def learn(self, task: Task, attempt: Attempt, verdict: EvalResult, outcome: EpisodeOutcome) -> None:
        """With memory on: the verdict counts on the lessons the episode read, and the episode becomes a case,
        with the solution the hidden tests passed."""
        if attempt.memory is not None:
            attempt.memory.after_episode(
                task_id=task.id,
                task=task.instructions,
                episode_id=attempt.episode_id,
                passed=verdict.passed,
                score=verdict.score,
                served=attempt.gateway.lessons_served.get(attempt.episode_id, []),
                solution=_solution(task, outcome) if verdict.passed else "",
                node_id=attempt.agent_id,
            )

    def row(
        self, task: Task, attempt: Attempt, outcome: EpisodeOutcome, verdict: EvalResult | None
    ) -> ResultRow:
        return outcome_row(
            task,
            outcome,
            verdict,
            run_id=attempt.run.run_id,
            agent_id=attempt.agent_id,
            attempt=attempt.index,
        )

    def recover(self, shared: Evaluator) -> None:
        """Nothing to drop: every evaluation takes a fresh sandbox of the pool."""


KIND: TaskKind[Task, Evaluator, EpisodeOutcome, EvalResult] = CodingKind()


def _solution(task: Task, outcome: EpisodeOutcome) -> str:
    """The solution file of the episode's final workspace ('' when it is missing or not text)."""
    content, _ = workspace_files(outcome.workspace_tar, task.solution_file).get(task.solution_file, (b"", 0))
    try:
        return content.decode()
    except UnicodeDecodeError:
        return ""


def score_episode(
    task: Task, outcome: EpisodeOutcome, evaluator: Evaluator, *, run_id: str, agent_id: str, attempt: int
) -> ResultRow:
    """Evaluate the final workspace: the hidden tests decide ``passed`` and ``score``, submitted or not.

    ``error_kind`` says why an episode ended other than by submission (budget, crash, timeout), else
    what the evaluator found (no solution, import error, failing tests).
    """
    return outcome_row(
        task,
        outcome,
        evaluator.evaluate(task, outcome.workspace_tar),
        run_id=run_id,
        agent_id=agent_id,
        attempt=attempt,
    )


def outcome_row(
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
