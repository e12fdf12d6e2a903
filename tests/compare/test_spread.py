"""``--limit N --spread``: the comparison's N tasks spread over the levels and templates, kept in the plan."""

from __future__ import annotations

import pytest

from agentevo.compare import parse_arm
from agentevo.compare.analysis import analyse
from agentevo.compare.plan import CompareError, Design, open_plan
from agentevo.compare.stats import sign_test
from agentevo.evaluate.results import ResultRow
from agentevo.tasks import load_suite
from agentevo.tasks.spread import chosen, spread


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


def test_chosen_gives_the_split_its_first_tasks_or_a_spread_as_finetune_samples_them():
    train = load_suite("ladder", split="train")
    assert [t.id for t in chosen("ladder", "train", None, True)] == [t.id for t in train]
    assert [t.id for t in chosen("ladder", "train", 12, False)] == [t.id for t in train[:12]]
    assert {t.difficulty for t in chosen("ladder", "train", 12, False)} == {1}
    assert [t.id for t in chosen("ladder", "train", 12, True)] == [t.id for t in spread(train, 12)]


def test_held_out_ladder_tasks_are_grouped_and_tested_per_group(tmp_path):
    """The ladder's test split has in-distribution and transfer tasks: the paired test is also given per group,
    on that group's tasks alone (here: the arm wins every transfer task and loses every in-distribution one)."""
    arms = [parse_arm("a=seed"), parse_arm("b=seed")]
    plan = open_plan(tmp_path / "run", arms, Design(suite="ladder", split="test"), tmp_path)
    transfer = {t for t, g in plan.groups.items() if g == "transfer"}
    assert set(plan.groups) == set(plan.tasks) and len(transfer) == 100 and len(plan.tasks) == 239
    rows = [
        ResultRow(run_id="r", agent_id=arm, task_id=t, suite="ladder", attempt=0, passed=(arm == "b") == (t in transfer),
                  score=0.0, tokens=1, seconds=1.0)
        for arm in ("a", "b") for t in plan.tasks
    ]  # fmt: skip
    comparison = analyse(plan, rows, run_id="r", run_dir=tmp_path)
    (overall,) = comparison.paired
    (moved,), (kept,) = comparison.paired_by_group["transfer"], comparison.paired_by_group["in-distribution"]
    assert (moved.tasks, moved.won, moved.lost, moved.difference) == (len(transfer), len(transfer), 0, 1.0)
    assert (kept.tasks, kept.won, kept.lost, kept.difference) == (139, 0, 139, -1.0)
    assert overall.tasks == 239 and moved.p_value == sign_test(len(transfer), 0)
