"""B-STaR's balance record: pass@1, pass@k, distinct correct solutions per task, and the temperature pick."""

from __future__ import annotations

import pytest

from agentevo.train.balance import Sample, balance_record, pick_temperature

A, A2, B = "def f():\n    return 1\n", "def f():\n    return 1  \n\n", "def f():\n    return 2 - 1\n"


def test_balance_counts_distinct_correct_solutions_and_pass_at_k() -> None:
    samples = [
        Sample(task_id="t1", solution=A, passed=True),
        Sample(task_id="t1", solution=A2, passed=True),  # the same solution up to whitespace
        Sample(task_id="t1", solution=B, passed=True),
        Sample(task_id="t1", solution="x", passed=False),
        Sample(task_id="t2", solution="y", passed=False),
        Sample(task_id="t2", solution="z", passed=False),
    ]
    record = balance_record(samples, temperature=0.8, k=2, n_star=4)
    t1, t2 = record.per_task
    assert (t1.samples, t1.correct, t1.distinct_correct) == (4, 3, 2)
    assert (t2.samples, t2.correct, t2.distinct_correct) == (2, 0, 0)
    assert record.pass_at_1 == pytest.approx((3 / 4 + 0) / 2)
    assert record.pass_at_k == pytest.approx((1.0 + 0) / 2)  # 1 - C(1,2)/C(4,2) = 1 for t1
    assert record.distinct_correct_mean == 1.0
    assert record.balance == pytest.approx((min(2 / 4, 1) * 3 / 4 + 0) / 2)


def test_the_temperature_with_the_best_balance_is_picked() -> None:
    same = [Sample(task_id="t", solution=A, passed=True)] * 4  # no exploration: one distinct solution
    varied = [
        Sample(task_id="t", solution=s, passed=p)
        for s, p in [(A, True), (B, True), ("x", False), ("y", False)]
    ]
    records = [balance_record(same, 0.2, 4), balance_record(varied, 0.8, 4), balance_record(varied, 1.0, 4)]
    assert records[0].balance == pytest.approx(1 / 4) and records[1].balance == pytest.approx(2 / 4 * 2 / 4)
    assert pick_temperature(records) == 0.2
    records.append(
        balance_record([Sample(task_id="t", solution=s, passed=True) for s in (A, B, "p", "q")], 1.2, 4)
    )
    assert pick_temperature(records) == 1.2
    with pytest.raises(ValueError, match="no sampling rounds"):
        pick_temperature([])


def test_self_training_is_due_every_n_admitted_nodes_and_skips_without_data(tmp_path) -> None:
    from agentevo.runs import RunDir
    from agentevo.tasks.model import Split
    from agentevo.train.config import TrainConfig
    from agentevo.train.interleave import SelfTraining
    from tests.train.recorded import record_answer, task_ids

    run = RunDir(tmp_path / "archives", "r1")
    record_answer(run, task_ids(Split.train, 1)[0], 0, "q?", "no idea", False)  # nothing passed yet
    notes: list[str] = []
    hook = SelfTraining(
        TrainConfig(adapters_dir=tmp_path / "adapters", interleave_every=3), tmp_path, server=None,
        judge=lambda *a: None, log=notes.append,
    )  # fmt: skip
    assert [hook.due(n) for n in (1, 2, 3)] == [False, False, True]
    assert hook.on_admitted(2, [run.path]) is None and notes == []
    assert hook.on_admitted(3, [run.path]) is None and "skipped at 3 admitted nodes: all 1 judged" in notes[0]
    assert not hook.due(5) and hook.due(6)
    never = SelfTraining(
        TrainConfig(adapters_dir=tmp_path / "a2"), tmp_path, server=None, judge=lambda *a: None
    )
    assert not never.due(100)


def test_self_training_keeps_its_count_in_the_run_so_a_resume_neither_repeats_nor_skips_a_round(
    tmp_path,
) -> None:
    from agentevo.runs import RunDir
    from agentevo.train.config import TrainConfig
    from agentevo.train.interleave import SelfTraining

    run = RunDir(tmp_path / "archives", "r1")
    config = TrainConfig(adapters_dir=tmp_path / "adapters", interleave_every=3)
    state = run.path / "self_training.json"
    first = SelfTraining(
        config, tmp_path, server=None, judge=lambda *a: None, log=lambda n: None, state=state
    )
    assert first.on_admitted(3, [run.path]) is None  # due, but nothing recorded to train on: skipped, counted
    resumed = SelfTraining(config, tmp_path, server=None, judge=lambda *a: None, state=state)
    assert [resumed.due(n) for n in (3, 5, 6)] == [False, False, True]
