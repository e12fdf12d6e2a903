"""``--limit N --spread``: the comparison's N tasks spread over the levels and templates, kept in the plan."""

from __future__ import annotations

import pytest

from agentevo.compare import parse_arm
from agentevo.compare.plan import CompareError, Design, open_plan
from agentevo.tasks import load_suite
from agentevo.tasks.spread import spread


def test_a_spread_limit_spans_every_level_and_is_kept_by_the_plan(tmp_path):
    arms = [parse_arm("a=seed"), parse_arm("b=seed")]
    plan = open_plan(
        tmp_path / "run", arms, Design(suite="ladder", split="test", limit=10, spread=True), tmp_path
    )
    test = load_suite("ladder", split="test")
    assert plan.tasks == [t.id for t in spread(test, 10)] and plan.spread
    assert sorted(set(plan.levels.values())) == [1, 2, 3, 4, 5]  # the first 10 are all of level 1
    assert {test[i].difficulty for i in range(10)} == {1}
    assert [t.id for t in plan.load_tasks()] == plan.tasks
    again = open_plan(tmp_path / "run", arms, Design(), tmp_path)  # resumed: the same tasks
    assert again.tasks == plan.tasks
    with pytest.raises(CompareError, match="runs spread True, not False"):
        open_plan(tmp_path / "run", arms, Design(spread=False), tmp_path)


def test_spread_takes_one_level_in_turn_and_every_template_before_a_second_instance():
    tasks = spread(load_suite("ladder", split="train"), 20)
    assert [t.difficulty for t in tasks[:5]] == [1, 2, 3, 4, 5]
    templates = [t.metadata["template"] for t in tasks]
    assert len(set(templates)) == len(templates)  # 20 tasks, 20 templates
    assert len(spread(tasks, 100)) == 20  # never more than there are
