"""Sampling that stays balanced (B-STaR): how much a round of sampling explores, and at which temperature.

Self-training stalls when sampling stops exploring (every sample of a task is the same answer) or when too few
samples are correct to learn from. Each sampling round records, at its temperature, pass@1 and pass@k and the
number of distinct correct solutions per task; the balance score of B-STaR (per task
``min(distinct_correct / n_star, 1) * correct / samples``, averaged) rewards both, and
:func:`pick_temperature` chooses the temperature of a small grid that maximises it.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field

from agentevo.evaluate.results import pass_at_k
from agentevo.train.rationalise import RationaliseRecord


class Sample(BaseModel):
    """One sampled solution of a task and its verdict."""

    task_id: str
    solution: str
    passed: bool


class TaskBalance(BaseModel):
    task_id: str
    samples: int
    correct: int
    distinct_correct: int


class BalanceRecord(BaseModel):
    """One round of sampling at one temperature."""

    temperature: float
    k: int
    tasks: int
    pass_at_1: float
    pass_at_k: float
    distinct_correct_mean: float = Field(description="Distinct correct solutions per task, averaged.")
    balance: float = Field(description="B-STaR's balance score, averaged over tasks.")
    per_task: list[TaskBalance] = Field(default_factory=list)
    rationalised: RationaliseRecord | None = Field(
        None, description="What hinted re-attempts of unsolved tasks gave (train.rationalise); None when off."
    )


def _normalise(solution: str) -> str:
    return "\n".join(line.rstrip() for line in solution.strip().splitlines() if line.strip())


def balance_record(samples: list[Sample], temperature: float, k: int, n_star: int = 4) -> BalanceRecord:
    """The round's metrics; ``n_star`` is how many distinct correct solutions per task count as enough."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[sample.task_id].append(sample)
    per_task = [
        TaskBalance(
            task_id=task,
            samples=len(group),
            correct=sum(s.passed for s in group),
            distinct_correct=len({_normalise(s.solution) for s in group if s.passed}),
        )
        for task, group in sorted(groups.items())
    ]
    n = max(len(per_task), 1)
    scores = [min(t.distinct_correct / n_star, 1.0) * t.correct / t.samples for t in per_task if t.samples]
    return BalanceRecord(
        temperature=temperature,
        k=k,
        tasks=len(per_task),
        pass_at_1=sum(pass_at_k(t.samples, t.correct, 1) for t in per_task) / n,
        pass_at_k=sum(pass_at_k(t.samples, t.correct, k) for t in per_task) / n,
        distinct_correct_mean=sum(t.distinct_correct for t in per_task) / n,
        balance=sum(scores) / n,
        per_task=per_task,
    )


def pick_temperature(records: list[BalanceRecord]) -> float:
    """The temperature whose round had the best balance (ties: the lower temperature)."""
    if not records:
        raise ValueError("no sampling rounds to pick a temperature from")
    return max(records, key=lambda r: (r.balance, -r.temperature)).temperature
