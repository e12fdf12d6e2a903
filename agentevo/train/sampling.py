"""Sample k solutions per task from a served model, verify them, and record them as a run.

The calls are written with the gateway's recorder and the verdicts as result rows, in the same run-folder
format ``agentevo run`` produces, so the dataset builders read sampled rounds and agent runs alike. This is the
direct-prompting sampler of STaR/RFT rounds (one call per solution); an agent run through the gateway is the
other source of trajectories. With ``train.rationalise`` on, a train-split task that none of its k samples
solved is tried again with a hint (STaR rationalisation, :mod:`agentevo.train.rationalise`); a verified hinted
answer is recorded as one more attempt under the hint-free prompt, its result row's ``detail`` marked ``rationalised``.

:func:`sampling_round` is the B-STaR round: a probe at each temperature of ``train.temperatures`` on a few tasks,
:func:`~agentevo.train.balance.pick_temperature` on their balance, then every other task at the chosen one. Each
result row also says whether the sample passed the task's *visible* checks (``visible``: the example calls its
statement shows), which self-consistency votes with (``agentevo.train.datasets``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks.model import Task
from agentevo.train.balance import BalanceRecord, Sample, balance_record, pick_temperature
from agentevo.train.config import TrainConfig
from agentevo.train.rationalise import RationaliseRecord, rationalise_task
from agentevo.train.scoring import extract_code, solve_messages

Chat = Callable[[list[dict[str, str]], float], str]  # (messages, temperature) -> reply text
EQUALITY = re.compile(r"^assert (?P<call>.+?) == (?P<value>.+)$", re.DOTALL)
PASSED = "passed"


class Attempt(BaseModel):
    """One sampled reply, its code, and the evaluator's verdict on it."""

    reply: str
    code: str
    passed: bool
    score: float
    feedback: str = ""
    visible: bool | None = Field(
        None, description="Passed the tests its statement shows (None: it shows none)."
    )


class SamplingRecord(BaseModel):
    """A B-STaR round: the probes at each temperature, the one picked, and the round at it."""

    probes: list[BalanceRecord]
    temperature: float
    round: BalanceRecord | None = Field(None, description="The tasks not probed, at the picked temperature.")


def model_chat(chat_model: Any) -> Chat:
    """A LangChain chat model as a :data:`Chat` (temperature per call; every backbone takes it)."""
    return lambda messages, temperature: str(chat_model.invoke(messages, temperature=temperature).content)


def visible_tests(task: Task) -> list[int]:
    """Indices of the tests whose call and expected value the statement shows (``assert CALL == VALUE``)."""
    shown = []
    for index, test in enumerate(task.tests):
        match = EQUALITY.match(test.strip())
        if (
            match
            and match["call"].strip() in task.instructions
            and match["value"].strip() in task.instructions
        ):
            shown.append(index)
    return shown


def judge(task: Task, reply: str, evaluator: Any) -> Attempt:
    """The reply's code, judged by the evaluator's hidden tests in a fresh sandbox."""
    code = extract_code(reply)
    verdict = evaluator.evaluate_solution(task, code)
    shown = visible_tests(task)
    statuses = [t.status for t in verdict.tests]
    visible = all(i < len(statuses) and statuses[i] == PASSED for i in shown) if shown else None
    return Attempt(
        reply=reply,
        code=code,
        passed=verdict.passed,
        score=verdict.score,
        feedback=verdict.feedback,
        visible=visible,
    )


def sample_task(chat: Chat, task: Task, k: int, temperature: float, evaluator: Any) -> list[Attempt]:
    """``k`` replies to the task's direct prompt at ``temperature``, each judged."""
    messages = solve_messages(task)
    return [judge(task, chat(messages, temperature), evaluator) for _ in range(k)]


def record(
    run: RunDir,
    task: Task,
    attempt: int,
    reply: str,
    temperature: float,
    model: str,
    passed: bool,
    score: float,
    **extra: Any,
) -> None:
    """One call (tagged with ``model`` as its agent, which joins it to its verdict) and its result row."""
    messages = solve_messages(task)
    TrajectoryRecorder(run.path).append(
        CallRecord(
            run_id=run.run_id,
            agent_id=model,
            task_id=task.id,
            episode_id=f"{task.id.replace('/', '-')}-{attempt}",
            model=model,
            request={"model": model, "messages": messages, "temperature": temperature},
            response={"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]},
        )
    )
    with ResultsStore(run.path / RESULTS_DB) as store:
        store.add(
            ResultRow(
                run_id=run.run_id,
                agent_id=model,
                task_id=task.id,
                suite=task.suite,
                attempt=attempt,
                passed=passed,
                score=score,
                detail=extra,
            )
        )


def record_attempts(
    run: RunDir, task: Task, attempts: list[Attempt], temperature: float, model: str, first: int = 0
) -> None:
    """The attempts as attempts ``first``, ``first + 1``, ... of the task."""
    for number, a in enumerate(attempts, start=first):
        record(run, task, number, a.reply, temperature, model, a.passed, a.score, visible=a.visible)


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
    first_attempt: int = 0,
) -> BalanceRecord:
    """``k`` samples of every task at ``temperature``, each judged by the evaluator and recorded in ``run``
    (as attempts ``first_attempt`` on).

    The balance metrics count the k samples only; with ``config.rationalise`` the record also says what the
    hinted re-attempts of unsolved tasks gave (``rationalised``).
    """
    samples = []
    hints = config if config is not None and config.rationalise else None
    rationalised = RationaliseRecord()
    for task in tasks:
        attempts = sample_task(chat, task, k, temperature, evaluator)
        record_attempts(run, task, attempts, temperature, model, first_attempt)
        samples += [Sample(task_id=task.id, solution=a.code, passed=a.passed) for a in attempts]
        failed = next(((a.code, a.feedback) for a in reversed(attempts) if not a.passed), ("", ""))
        if hints is None or any(a.passed for a in attempts):
            continue
        messages = solve_messages(task)
        answer = rationalise_task(
            lambda m: chat(m, temperature), task, messages, failed, evaluator, hints, rationalised
        )
        if answer is not None:
            record(
                run,
                task,
                first_attempt + k,
                answer.reply,
                temperature,
                model,
                True,
                answer.score,
                rationalised=answer.hint.value,
                hint_tries=answer.tries,
            )
    result = balance_record(samples, temperature, k)
    return result.model_copy(update={"rationalised": rationalised if hints else None})


def sampling_round(
    chat: Chat, tasks: list[Task], evaluator: Any, run: RunDir, *, model: str, config: TrainConfig
) -> SamplingRecord:
    """B-STaR: probe the first ``config.probe_tasks`` tasks at each temperature of the grid (attempts kept apart,
    all recorded: every probe is data too), pick the temperature of best balance, sample the rest at it."""
    probed, rest = tasks[: config.probe_tasks], tasks[config.probe_tasks :]
    probes = [
        sample_round(chat, probed, config.k, t, evaluator, run, model=model, first_attempt=i * config.k)
        for i, t in enumerate(config.temperatures)
    ]
    chosen = pick_temperature(probes)
    if not rest:
        return SamplingRecord(probes=probes, temperature=chosen)
    main = sample_round(chat, rest, config.k, chosen, evaluator, run, model=model, config=config)
    return SamplingRecord(probes=probes, temperature=chosen, round=main)
