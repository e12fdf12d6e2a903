"""A small task sample that still spans a suite: round-robin over difficulty levels, then over templates.

Suites come easy first, so their first N tasks are all of the lowest level; a short evaluation (a demo's stage, a
quick comparison) on them says nothing about the rest. ``spread`` takes one task of each level in turn, and within
a level one instance of each template before any template twice, keeping the suite's order otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from agentevo.tasks.model import Task
from agentevo.tasks.suites import load_suite


def spread(tasks: list[Task], count: int) -> list[Task]:
    """``count`` of ``tasks``, spread over their levels (``difficulty``) and templates (``metadata['template']``)."""
    by_level: dict[int, list[Task]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    ranked = []
    for position, task in enumerate(tasks):
        template = str(task.metadata.get("template", task.id))
        ranked.append((seen[template], position, task))
        seen[template] += 1
    for _, _, task in sorted(ranked, key=lambda item: item[:2]):
        by_level[task.difficulty or 0].append(task)
    queues = [by_level[level] for level in sorted(by_level)]
    picked: list[Task] = []
    while len(picked) < count and any(queues):
        picked += [queue.pop(0) for queue in queues if queue][: count - len(picked)]
    return picked


def chosen(
    suite: str,
    split: str | None,
    limit: int | None,
    spread_out: bool,
    on_note: Callable[[str], None] = lambda note: None,
) -> list[Task]:
    """The tasks of a split: all, its first ``limit``, or ``limit`` of them spread over levels (``spread_out``)."""
    if spread_out and limit:
        return spread(load_suite(suite, split=split, on_note=on_note), limit)
    return load_suite(suite, split=split, limit=limit, on_note=on_note)
