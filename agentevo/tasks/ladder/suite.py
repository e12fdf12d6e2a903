"""The ladder suite: every template's instances, and the split rule that holds some templates out whole.

Two kinds of held-out task (see docs/ladder.md):

* in-distribution: a template seen in training has instances in every split; which split an instance
  is in follows the usual rule for ids (``split_of``), so held-out instances sit beside train ones;
* transfer: a template marked ``transfer`` keeps only the instances whose id falls in the test split,
  so the test split holds templates no train or validation task came from.

Either way a task's split is still ``split_of(task.id)``: code that knows only ids agrees with it.
"""

from __future__ import annotations

from dataclasses import replace

from agentevo.tasks.ladder import level1, level2, level3, level4, level5
from agentevo.tasks.ladder.template import SUITE, Template, instance_task
from agentevo.tasks.model import Split, Task, split_of
from agentevo.tasks.suites import SuiteError

LEVELS = (level1, level2, level3, level4, level5)  # level n is LEVELS[n - 1]
SEED = 0  # the seed of the registered suite, `--suite ladder`
INSTANCES = 10  # tasks per template
MAX_DRAWS = 40 * INSTANCES  # instance numbers tried per template before it counts as too narrow


def templates() -> list[Template]:
    """Every template, easy first, each with its level set."""
    return [replace(t, level=n) for n, module in enumerate(LEVELS, start=1) for t in module.TEMPLATES]


def task_id(template: Template, index: int) -> str:
    return f"{SUITE}/{template.name}-{index}"


def _instances(template: Template, seed: int, count: int) -> list[Task]:
    """``count`` instances with distinct instructions; test-split ones only for a transfer template."""
    tasks: dict[str, Task] = {}
    for index in range(MAX_DRAWS):
        identifier = task_id(template, index)
        if template.transfer and split_of(identifier) is not Split.test:
            continue
        task = instance_task(template, index, seed, task_id=identifier)
        tasks.setdefault(task.instructions, task)
        if len(tasks) == count:
            return list(tasks.values())
    raise SuiteError(
        f"suite {SUITE!r}: template {template.name!r} gave fewer than {count} distinct instances in "
        f"{MAX_DRAWS} draws; widen its parameters or inputs"
    )


def generate_ladder(seed: int = SEED, instances: int = INSTANCES) -> list[Task]:
    """The whole ladder under ``seed``: the same seed always gives the same tasks, easy first."""
    return [task for template in templates() for task in _instances(template, seed, instances)]


def load_ladder() -> list[Task]:
    """The registered suite: ``generate_ladder`` under the fixed seed ``SEED``."""
    return generate_ladder()
