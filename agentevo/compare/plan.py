"""A comparison's plan, ``compare.json`` in its run folder: the tasks, the attempts, the seed and the arms.

Written before the first episode and read back by every later call on the run, so a resumed comparison runs
the same tasks the same number of times, and an arm added later joins the same design; anything given that
contradicts the saved plan is refused with the way out.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from agentevo.compare.agent import resolve
from agentevo.compare.arms import Arm, ArmError, check_arms
from agentevo.files import read_json, write_json_atomic
from agentevo.runs import PLAN_FILE
from agentevo.tasks import Task, load_suite
from agentevo.tasks.spread import chosen

ALL_SPLITS = "all"


class CompareError(ValueError):
    """A comparison cannot start or go on as asked; the message says what to change."""


class Design(BaseModel):
    """What every arm runs. A field left None takes the saved plan's value, or its default on a new run."""

    suite: str | None = None
    split: str | None = None
    limit: int | None = Field(None, ge=1)
    attempts: int | None = Field(None, ge=1)
    seed: int | None = None
    spread: bool | None = Field(
        None,
        description="With limit: the N tasks spread over levels and templates (tasks.spread), not the first N.",
    )


DEFAULTS = Design(suite="builtin", split="test", attempts=1, seed=0, spread=False)


class Plan(BaseModel):
    """``compare.json``."""

    suite: str
    split: str = Field(description="train | validation | test | all")
    limit: int | None = None
    spread: bool = Field(False, description="Whether the limit took tasks spread over levels (tasks.spread).")
    attempts: int = Field(ge=1)
    seed: int = Field(
        description="Of the bootstrap, of Monte Carlo permutations, and of every attempt's model calls "
        "(orchestrate.attempts.attempt_seed)."
    )
    tasks: list[str] = Field(description="Task ids, in order: the same for every arm.")
    levels: dict[str, int] = Field(
        default_factory=dict, description="Task id -> its level (Task.difficulty)."
    )
    groups: dict[str, str] = Field(
        default_factory=dict,
        description="Task id -> its group, where the suite has them (the ladder: in-distribution, or transfer: a "
        "template no train task has); the paired test is also reported per group.",
    )
    arms: list[Arm] = Field(description="In order; the first is the baseline.")
    agents: dict[str, str] = Field(description="Arm name -> its agent, archive:RUN:best resolved to a node.")

    def load_tasks(self) -> list[Task]:
        """The plan's tasks, loaded again; refused when the suite no longer has them all."""
        split = None if self.split == ALL_SPLITS else self.split
        found = {t.id: t for t in load_suite(self.suite, split=split)}
        missing = [t for t in self.tasks if t not in found]
        if missing:
            raise CompareError(
                f"suite {self.suite} no longer has {len(missing)} of the comparison's tasks (e.g. {missing[0]}): "
                "its data changed since the comparison began; start a new comparison"
            )
        return [found[t] for t in self.tasks]


def open_plan(run_dir: Path, arms: list[Arm], given: Design, archives_dir: Path) -> Plan:
    """The plan of the comparison in ``run_dir``: the saved one with ``arms`` added, or a new one; written back."""
    saved = read_json(run_dir / PLAN_FILE)
    plan = _extended(Plan.model_validate(saved), arms, given) if saved else _new(arms, given)
    check_arms(plan.arms)
    for arm in plan.arms:
        plan.agents.setdefault(arm.name, resolve(arm.agent, archives_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / PLAN_FILE, plan.model_dump(mode="json"))
    return plan


def _new(arms: list[Arm], given: Design) -> Plan:
    design = DEFAULTS.model_copy(update=given.model_dump(exclude_none=True))
    suite = design.suite
    assert suite is not None  # DEFAULTS names one
    split = None if design.split == ALL_SPLITS else design.split
    tasks = chosen(suite, split, design.limit, bool(design.spread))
    if not tasks:
        raise CompareError(f"suite {design.suite}, split {design.split}: no tasks to compare on")
    fields = design.model_dump(exclude={"limit"})
    levels = {t.id: t.difficulty for t in tasks}
    groups = {t.id: group for t in tasks if (group := task_group(t))}
    return Plan(
        **fields,
        limit=design.limit,
        tasks=[t.id for t in tasks],
        levels=levels,
        groups=groups,
        arms=arms,
        agents={},
    )


def task_group(task: Task) -> str | None:
    """The ladder's split of held-out tasks: ``transfer`` (a template never trained on) or ``in-distribution``."""
    if "transfer" not in task.metadata:
        return None
    return "transfer" if task.metadata["transfer"] else "in-distribution"


def _extended(plan: Plan, arms: list[Arm], given: Design) -> Plan:
    """``plan`` with the new ``arms``; refused when ``given`` or a known arm's spec contradicts it."""
    for field, value in given.model_dump(exclude_none=True).items():
        if value != getattr(plan, field):
            raise CompareError(
                f"this comparison runs {field} {getattr(plan, field)!r}, not {value!r}: leave --{field} out to go "
                "on with it, or start a new comparison"
            )
    known = {arm.name: arm for arm in plan.arms}
    for arm in arms:
        if arm.name in known and known[arm.name] != arm:
            raise ArmError(
                f"arm {arm.name!r} is {known[arm.name].describe()} in this comparison, not {arm.describe()}: "
                "give the new arm a new name"
            )
    return plan.model_copy(update={"arms": plan.arms + [a for a in arms if a.name not in known]})
