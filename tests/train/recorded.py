"""Recorded runs for the dataset tests, written through the real gateway recorder and run folder.

An episode is what the gateway records of a two-call agent: a tool call (write the solution), then a submit,
with the evaluator's verdict as a row of the run's store. No model runs here: the builders read files.
"""

from __future__ import annotations

import json

from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks.model import Split, split_of

SYSTEM = "You solve coding tasks. Write solution.py, then submit."
TOOLS = [
    {"type": "function", "function": {"name": "write_file", "description": "Write a file.", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"]}}},
    {"type": "function", "function": {"name": "submit", "description": "Submit.", "parameters": {
        "type": "object", "properties": {}}}},
]  # fmt: skip


def task_ids(split: Split, n: int, prefix: str = "toy/t") -> list[str]:
    """The first ``n`` ids ``<prefix><i>`` whose stable split is ``split``."""
    ids = (f"{prefix}{i}" for i in range(10_000))
    return [t for t in ids if split_of(t) is split][:n]


def _reply(content: str, tool: str | None = None, args: dict | None = None) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool:
        message["tool_calls"] = [
            {
                "id": f"call_{tool}",
                "type": "function",
                "function": {"name": tool, "arguments": json.dumps(args)},
            }
        ]
    return {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}]}


def record_episode(
    run: RunDir,
    task_id: str,
    attempt: int,
    code: str,
    passed: bool | None,
    *,
    time0: float = 1000.0,
    final: str = "Done.",
) -> None:
    """Two calls of one episode into ``llm_calls.jsonl``, and its verdict into ``results.sqlite`` (unless None)."""
    recorder = TrajectoryRecorder(run.path)
    episode = f"{task_id.replace('/', '-')}-{attempt}"
    first = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Task {task_id}: add(a, b)."},
    ]
    reply1 = _reply("", "write_file", {"path": "solution.py", "content": code})
    second = [
        *first,
        reply1["choices"][0]["message"],
        {"role": "tool", "tool_call_id": "call_write_file", "content": "wrote solution.py"},
    ]
    reply2 = _reply(final, "submit", {})
    for i, (messages, reply) in enumerate([(first, reply1), (second, reply2)]):
        recorder.append(
            CallRecord(
                run_id=run.run_id, agent_id="seed", task_id=task_id, episode_id=episode, model="smollm2-135m-instruct",
                request={"model": "smollm2-135m-instruct", "messages": messages, "tools": TOOLS},
                response=reply, time=time0 + attempt * 10 + i,
            )
        )  # fmt: skip
    if passed is not None:
        record_verdict(run, task_id, attempt, passed)


def record_answer(
    run: RunDir, task_id: str, attempt: int, question: str, answer: str, passed: bool, agent_id: str = "seed"
) -> None:
    """A one-call episode (question -> answer) with its verdict: the smallest trajectory there is."""
    episode = f"{task_id.replace('/', '-')}-{attempt}"
    TrajectoryRecorder(run.path).append(
        CallRecord(
            run_id=run.run_id, agent_id=agent_id, task_id=task_id, episode_id=episode, model="smollm2-135m-instruct",
            request={"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": question}]},
            response=_reply(answer),
        )
    )  # fmt: skip
    record_verdict(run, task_id, attempt, passed, agent_id)


def record_verdict(
    run: RunDir, task_id: str, attempt: int, passed: bool, agent_id: str = "seed", **detail: object
) -> None:
    """The episode's row in the run's store (``detail``: what a sampling round keeps beside it, e.g. ``visible``)."""
    row = ResultRow(
        run_id=run.run_id, agent_id=agent_id, task_id=task_id, attempt=attempt, passed=passed,
        score=1.0 * passed, detail=detail,
    )  # fmt: skip
    with ResultsStore(run.path / RESULTS_DB) as store:
        store.add(row)
