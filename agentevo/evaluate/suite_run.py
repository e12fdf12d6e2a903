"""Run an agent over a suite: isolated episodes in parallel, each scored by the evaluator.

This is what ``agentevo run`` does and what evolution calls to score a candidate agent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from agentevo.agents import EpisodeOutcome, run_isolated
from agentevo.agents.seed import AgentConfig
from agentevo.config import AgentevoConfig
from agentevo.evaluate.evaluator import Evaluator
from agentevo.evaluate.results import ErrorKind, ResultRow, ResultsStore
from agentevo.gateway import Backend, Gateway
from agentevo.gateway.launch import open_backend
from agentevo.runs import RunDir
from agentevo.tasks import Task

RESULTS_DB = "results.sqlite"


def episode_error_kind(outcome: EpisodeOutcome) -> ErrorKind | None:
    """Why an episode ended without a submission (None when it submitted)."""
    if outcome.submitted:
        return None
    return {
        "step_budget": ErrorKind.step_budget,
        "token_budget": ErrorKind.token_budget,
        "timeout": ErrorKind.timeout,
        "agent_crash": ErrorKind.agent_crash,
        "llm_error": ErrorKind.agent_crash,
    }.get(outcome.stop_reason, ErrorKind.no_submit)


def score_episode(
    task: Task, outcome: EpisodeOutcome, evaluator: Evaluator, *, run_id: str, agent_id: str, attempt: int
) -> ResultRow:
    """Evaluate the final workspace: the hidden tests decide ``passed`` and ``score``, submitted or not.

    ``error_kind`` says why an episode ended other than by submission (budget, crash, timeout), else
    what the evaluator found (no solution, import error, failing tests).
    """
    verdict = evaluator.evaluate(task, outcome.workspace_tar)
    return ResultRow(
        run_id=run_id,
        agent_id=agent_id,
        task_id=task.id,
        suite=task.suite,
        attempt=attempt,
        passed=verdict.passed,
        score=verdict.score,
        tokens=outcome.tokens,
        seconds=outcome.seconds + verdict.elapsed,
        error_kind=episode_error_kind(outcome) or verdict.error_kind,
    )


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

    ``backend`` replaces the configured backbone (a scripted model for tests and benchmarks).
    """
    store = ResultsStore(run.path / RESULTS_DB)
    evaluator = Evaluator(config.sandbox)
    run.describe(
        agent_id=agent_id, agent_dir=str(agent_dir), tasks=len(tasks), attempts=attempts, started=time.time()
    )
    rows: list[ResultRow] = []
    backends = contextlib.nullcontext(backend) if backend else open_backend(config, concurrent=parallel > 1)
    with backends as served, Gateway(served, run_dir=run.path, run_id=run.run_id) as gateway:

        def episode(task: Task, attempt: int) -> ResultRow:
            outcome = run_isolated(
                task,
                agent_dir,
                gateway,
                sandbox_config=config.sandbox,
                agent_config=agent_config,
                agent_id=agent_id,
                episode_id=f"{task.id.replace('/', '-')}-{attempt}",
                checkpoint_dir=run.path / "checkpoints",
            )
            return score_episode(
                task, outcome, evaluator, run_id=run.run_id, agent_id=agent_id, attempt=attempt
            )

        with ThreadPoolExecutor(max_workers=parallel) as workers:
            futures = [
                workers.submit(episode, task, attempt) for task in tasks for attempt in range(attempts)
            ]
            for future in as_completed(futures):
                row = future.result()
                store.add(row)
                run.append(row)
                rows.append(row)
                on_result(row)
    run.describe(finished=time.time(), passed=sum(r.passed for r in rows), episodes=len(rows))
    return rows
