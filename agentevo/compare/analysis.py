"""From a comparison's result rows to its numbers: per arm, and per arm against the baseline (the first arm).

Only scored attempts count (those the infrastructure spoiled on every try are reported apart). A task enters an
arm's numbers once it has a scored attempt, and a paired difference once both arms have one.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, Field

from agentevo.compare.plan import Plan
from agentevo.compare.stats import (
    Interval,
    Method,
    bootstrap_ci,
    min_detectable_effect,
    permutation_test,
    sign_test,
)
from agentevo.evaluate.results import ResultRow, pass_at_k

ALPHA, POWER = 0.05, 0.8


class LevelSummary(BaseModel):
    """An arm on the tasks of one level."""

    tasks: int
    pass_at_1: float


class ArmSummary(BaseModel):
    """One arm over the plan's tasks."""

    name: str
    spec: str = Field(description="The arm as written (without its name).")
    agent: str = Field(description="The agent it ran (archive:RUN:best resolved).")
    tasks: int = Field(description="Tasks with at least one scored attempt.")
    episodes: int = Field(description="Scored attempts.")
    planned: int = Field(description="Attempts the plan asks for: tasks x attempts.")
    spoiled: int = Field(0, description="Attempts the infrastructure spoiled on every try (not scored).")
    pass_at_1: float = Field(description="Mean over tasks of the share of attempts that passed.")
    pass_at_1_ci: Interval
    pass_at_k: float = Field(description="The unbiased pass@k, k = the plan's attempts.")
    tokens_per_task: float
    seconds_per_task: float
    per_task: dict[str, tuple[int, int]] = Field(description="Task id -> (attempts passed, scored attempts).")
    per_level: dict[int, LevelSummary] = Field(
        default_factory=dict, description="By task level (difficulty)."
    )


class PairedSummary(BaseModel):
    """One arm against the baseline, task by task."""

    arm: str
    baseline: str
    tasks: int = Field(description="Tasks both arms have a scored attempt of.")
    difference: float = Field(description="Mean over those tasks of the arm's pass@1 minus the baseline's.")
    ci: Interval
    test: Method
    p_value: float
    won: int = Field(description="Tasks where the arm passed more often than the baseline.")
    lost: int
    tied: int
    mde: float | None = Field(
        description="The smallest gain over the baseline detectable with 80 % power on these tasks (None: none)."
    )

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


class Comparison(BaseModel):
    """``comparison.json``: everything the table, the summary line and the HTML section show."""

    run_id: str
    run_dir: Path
    suite: str
    split: str
    limit: int | None
    attempts: int
    seed: int
    tasks: int
    alpha: float = ALPHA
    power: float = POWER
    arms: list[ArmSummary]
    paired: list[PairedSummary]
    paired_by_group: dict[str, list[PairedSummary]] = Field(
        default_factory=dict, description="The paired tests on each group's tasks alone (Plan.groups)."
    )

    @property
    def complete(self) -> bool:
        return all(arm.episodes + arm.spoiled >= arm.planned for arm in self.arms)


def analyse(plan: Plan, rows: list[ResultRow], *, run_id: str, run_dir: Path) -> Comparison:
    """The comparison's numbers from its rows (any arm's rows may still be missing: they count as not run)."""
    by_arm: dict[str, list[ResultRow]] = defaultdict(list)
    tasks = set(plan.tasks)
    for row in rows:
        if row.task_id in tasks:
            by_arm[row.agent_id].append(row)
    arms = [_arm(plan, arm.name, arm.describe(), by_arm[arm.name]) for arm in plan.arms]
    paired = [_paired(plan, arms[0], arm) for arm in arms[1:]]
    groups = sorted(set(plan.groups.values()))
    by_group = {
        g: [_paired(plan, arms[0], arm, {t for t, x in plan.groups.items() if x == g}) for arm in arms[1:]]
        for g in (groups if len(groups) > 1 else [])
    }
    design = plan.model_dump(include={"suite", "split", "limit", "attempts", "seed"})
    return Comparison(
        run_id=run_id,
        run_dir=run_dir,
        **design,
        tasks=len(plan.tasks),
        arms=arms,
        paired=paired,
        paired_by_group=by_group,
    )


def _arm(plan: Plan, name: str, spec: str, rows: list[ResultRow]) -> ArmSummary:
    scored = [r for r in rows if r.scored]
    per_task: dict[str, list[int]] = {}
    for row in scored:
        counts = per_task.setdefault(row.task_id, [0, 0])
        counts[0] += row.passed
        counts[1] += 1
    rates = [c / n for c, n in per_task.values()]
    tasks = max(len(per_task), 1)
    return ArmSummary(
        name=name,
        spec=spec,
        agent=plan.agents.get(name, ""),
        tasks=len(per_task),
        episodes=len(scored),
        planned=len(plan.tasks) * plan.attempts,
        spoiled=len(rows) - len(scored),
        pass_at_1=sum(rates) / tasks,
        pass_at_1_ci=bootstrap_ci(rates, seed=plan.seed),
        pass_at_k=sum(pass_at_k(n, c, plan.attempts) for c, n in per_task.values()) / tasks,
        tokens_per_task=sum(r.tokens for r in rows) / tasks,
        seconds_per_task=sum(r.seconds for r in rows) / tasks,
        per_task={t: (c, n) for t, (c, n) in per_task.items()},
        per_level=_levels(plan, per_task),
    )


def _levels(plan: Plan, per_task: dict[str, list[int]]) -> dict[int, LevelSummary]:
    rates: dict[int, list[float]] = defaultdict(list)
    for task, (passed, attempts) in per_task.items():
        if task in plan.levels:
            rates[plan.levels[task]].append(passed / attempts)
    return {
        level: LevelSummary(tasks=len(r), pass_at_1=sum(r) / len(r)) for level, r in sorted(rates.items())
    }


def _paired(plan: Plan, base: ArmSummary, arm: ArmSummary, only: set[str] | None = None) -> PairedSummary:
    """``arm`` against ``base`` on the tasks both scored (of ``only``, when given)."""
    both = [t for t in plan.tasks if t in base.per_task and t in arm.per_task and (only is None or t in only)]
    diffs = [_rate(arm.per_task[t]) - _rate(base.per_task[t]) for t in both]
    won, lost = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    one_attempt = all(arm.per_task[t][1] == base.per_task[t][1] == 1 for t in both)
    if one_attempt:
        test, p_value = Method.mcnemar, sign_test(won, lost)
    else:
        verdict = permutation_test(diffs, seed=plan.seed)
        test, p_value = verdict.test, verdict.p_value
    baseline = sum(_rate(base.per_task[t]) for t in both) / max(len(both), 1)
    return PairedSummary(
        arm=arm.name,
        baseline=base.name,
        tasks=len(both),
        difference=float(sum(diffs, Fraction(0))) / max(len(both), 1),
        ci=bootstrap_ci([float(d) for d in diffs], seed=plan.seed),
        test=test,
        p_value=p_value,
        won=won,
        lost=lost,
        tied=len(both) - won - lost,
        mde=min_detectable_effect(len(both), plan.attempts, float(baseline)),
    )


def _rate(counts: tuple[int, int]) -> Fraction:
    passed, attempts = counts
    return Fraction(passed, attempts)
