"""B-STaR in the sampling path: probe rounds at each temperature of the grid pick the one of best balance, and the
other tasks are sampled at it; every sample is recorded with its verdict and whether it passed the visible checks.

The chat model is scripted (control flow only: hotter sampling gives more distinct correct solutions, and one
wrong one); the verdicts are the real evaluator's, in fresh Docker sandboxes.
"""

from __future__ import annotations

import json

from agentevo.evaluate.evaluator import Evaluator
from agentevo.evaluate.results import run_rows
from agentevo.runs import RunDir
from agentevo.tasks.builtin import load_builtin
from agentevo.train.config import TrainConfig
from agentevo.train.sampling import sampling_round, visible_tests

SQUARES = ["def square(n):\n    return n * n\n", "def square(n):\n    return n ** 2\n"]
WRONG = "def square(n):\n    return n + n\n"


def scripted(messages: list[dict[str, str]], temperature: float) -> str:
    """Cold: always the same right answer. Hot: two different right ones, then a wrong one, in turn."""
    scripted.calls = getattr(scripted, "calls", -1) + 1  # type: ignore[attr-defined]
    code = SQUARES[0] if temperature < 1 else [*SQUARES, WRONG][scripted.calls % 3]  # type: ignore[attr-defined]
    return f"```python\n{code}```"


def test_the_round_samples_at_the_temperature_of_best_balance(sandbox_image: str, tmp_path) -> None:
    square = next(t for t in load_builtin() if t.id == "builtin/square")
    tasks = [square, square.model_copy(update={"id": "builtin/square-again"})]
    run = RunDir(tmp_path / "archives", "bstar")
    config = TrainConfig(k=3, temperatures=[0.4, 1.2], probe_tasks=1)
    record = sampling_round(scripted, tasks, Evaluator(), run, model="smollm2", config=config)
    cold, hot = record.probes
    assert (cold.temperature, cold.pass_at_1, cold.per_task[0].distinct_correct) == (0.4, 1.0, 1)
    assert (hot.temperature, hot.per_task[0].correct, hot.per_task[0].distinct_correct) == (1.2, 2, 2)
    assert hot.balance > cold.balance and record.temperature == 1.2  # more distinct right answers win
    assert record.round is not None and record.round.temperature == 1.2
    assert [t.task_id for t in record.round.per_task] == ["builtin/square-again"]
    rows = run_rows(run.path)
    attempts = sorted((r.task_id, r.attempt) for r in rows)
    assert attempts == [("builtin/square", a) for a in range(6)] + [
        ("builtin/square-again", a) for a in range(3)
    ]
    assert visible_tests(square) == [0]  # "square(3) returns 9" is shown in its statement
    assert {r.detail["visible"] for r in rows if r.passed} == {True}
    calls = [json.loads(x) for x in (run.path / "llm_calls.jsonl").read_text().splitlines()]
    assert sorted({c["request"]["temperature"] for c in calls}) == [0.4, 1.2] and len(calls) == 9
