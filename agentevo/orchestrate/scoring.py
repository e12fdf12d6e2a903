"""An episode's row: the evaluator's verdict on its final workspace, and why it ended without a submission."""

from __future__ import annotations

from agentevo.agents import EpisodeOutcome, StopReason
from agentevo.evaluate.evaluator import EvalResult, Evaluator
from agentevo.evaluate.results import ErrorKind, ResultRow
from agentevo.tasks import Task

KINDS = {
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


def episode_error_kind(outcome: EpisodeOutcome) -> ErrorKind | None:
    """Why an episode ended without a submission (None when it submitted)."""
    if outcome.submitted:
        return None
    return KINDS[outcome.stop_reason]


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
