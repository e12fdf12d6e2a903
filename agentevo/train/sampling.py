"""Sample k solutions per task from a served model, verify them, and record them as a run.

The calls are written with the gateway's recorder and the verdicts as result rows, in the same run-folder
format ``agentevo run`` produces, so the dataset builders read sampled rounds and agent runs alike. This is the
direct-prompting sampler of STaR/RFT rounds (one call per solution); an agent run through the gateway is the
other source of trajectories. With ``train.rationalise`` on, a train-split task that none of its k samples
solved is tried again with a hint (STaR rationalisation, :mod:`agentevo.train.rationalise`); a verified hinted
answer is recorded as one more attempt under the hint-free prompt, its result row marked ``rationalised``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.runs import RunDir
from agentevo.tasks.model import Task
from agentevo.train.balance import BalanceRecord, Sample, balance_record
from agentevo.train.config import TrainConfig
from agentevo.train.rationalise import RationaliseRecord, rationalise_task
from agentevo.train.scoring import extract_code, solve_messages

Chat = Callable[[list[dict[str, str]], float], str]  # (messages, temperature) -> reply text


def _record(
    run: RunDir, task: Task, attempt: int, messages: list[dict[str, str]], reply: str, temperature: float,
    model: str, passed: bool, score: float, **extra: Any,
) -> None:  # fmt: skip
    """One call (tagged with ``model`` as its agent, which joins it to its verdict) and its result row."""
    TrajectoryRecorder(run.path).append(
        CallRecord(
            run_id=run.run_id, agent_id=model, task_id=task.id, episode_id=f"{task.id.replace('/', '-')}-{attempt}",
            model=model, request={"model": model, "messages": messages, "temperature": temperature},
            response={"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]},
        )
    )  # fmt: skip
    run.append({"agent_id": model, "task_id": task.id, "suite": task.suite, "attempt": attempt,
                "passed": passed, "score": score, **extra})  # fmt: skip


def sample_round(
    chat: Chat,
    tasks: list[Task],
    k: int,
    temperature: float,
    evaluator: Any,
    run: RunDir,
    *,
    model: str,
    config: TrainConfig | None = None,
) -> BalanceRecord:
    """``k`` samples of every task at ``temperature``, each judged by the evaluator and recorded in ``run``.

    The balance metrics count the k samples only; with ``config.rationalise`` the record also says what the
    hinted re-attempts of unsolved tasks gave (``rationalised``).
    """
    samples = []
    hints = config if config is not None and config.rationalise else None
    rationalised = RationaliseRecord()
    for task in tasks:
        messages = solve_messages(task)
        solved, failed = False, ("", "")
        for attempt in range(k):
            reply = chat(messages, temperature)
            code = extract_code(reply)
            verdict = evaluator.evaluate_solution(task, code)
            _record(run, task, attempt, messages, reply, temperature, model, verdict.passed, verdict.score)
            samples.append(Sample(task_id=task.id, solution=code, passed=verdict.passed))
            solved = solved or verdict.passed
            failed = failed if verdict.passed else (code, verdict.feedback)
        if hints is None or solved:
            continue
        answer = rationalise_task(
            lambda m: chat(m, temperature), task, messages, failed, evaluator, hints, rationalised
        )
        if answer is not None:
            _record(run, task, k, messages, answer.reply, temperature, model, True, answer.score,
                    rationalised=answer.hint.value, hint_tries=answer.tries)  # fmt: skip
    record = balance_record(samples, temperature, k)
    return record.model_copy(update={"rationalised": rationalised if hints else None})
