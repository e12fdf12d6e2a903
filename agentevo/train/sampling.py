"""Sample k solutions per task from a served model, verify them, and record them as a run.

The calls are written with the gateway's recorder and the verdicts as result rows, in the same run-folder
format ``agentevo run`` produces, so the dataset builders read sampled rounds and agent runs alike. This is the
direct-prompting sampler of STaR/RFT rounds (one call per solution); an agent run through the gateway is the
other source of trajectories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.runs import RunDir
from agentevo.tasks.model import Task
from agentevo.train.balance import BalanceRecord, Sample, balance_record
from agentevo.train.scoring import extract_code, solve_messages

Chat = Callable[[list[dict[str, str]], float], str]  # (messages, temperature) -> reply text


def sample_round(
    chat: Chat, tasks: list[Task], k: int, temperature: float, evaluator: Any, run: RunDir, *, model: str
) -> BalanceRecord:
    """``k`` samples of every task at ``temperature``, each judged by the evaluator and recorded in ``run``."""
    recorder = TrajectoryRecorder(run.path)
    samples = []
    for task in tasks:
        messages = solve_messages(task)
        for attempt in range(k):
            reply = chat(messages, temperature)
            code = extract_code(reply)
            verdict = evaluator.evaluate_solution(task, code)
            episode = f"{task.id.replace('/', '-')}-{attempt}"
            recorder.append(
                CallRecord(
                    run_id=run.run_id, task_id=task.id, episode_id=episode, model=model,
                    request={"model": model, "messages": messages, "temperature": temperature},
                    response={"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]},
                )
            )  # fmt: skip
            run.append({"agent_id": model, "task_id": task.id, "suite": task.suite, "attempt": attempt,
                        "passed": verdict.passed, "score": verdict.score})  # fmt: skip
            samples.append(Sample(task_id=task.id, solution=code, passed=verdict.passed))
    return balance_record(samples, temperature, k)
