"""Fault attribution in the results: attempts the infrastructure spoiled are reported, never scored."""

from __future__ import annotations

import pytest

from agentevo import contract
from agentevo.contract import Culprit, StopReason, blame
from agentevo.evaluate import ErrorKind, ResultRow, ResultsStore, SpoiledTry
from agentevo.gateway.backends import Fault

INFRA = [ErrorKind.sandbox_error, ErrorKind.backbone_error, ErrorKind.gateway_error, ErrorKind.docker_error]


def row(task: str, attempt: int, passed: bool, kind: ErrorKind | None = None) -> ResultRow:
    return ResultRow(run_id="r1", agent_id="a", task_id=task, suite="s", attempt=attempt, passed=passed,
                     score=1.0 if passed else 0.0, error_kind=kind)  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        yield store


def test_infrastructure_kinds_are_named_as_such():
    assert {k for k in ErrorKind if k.is_infrastructure} == set(INFRA)
    assert not ErrorKind.agent_crash.is_infrastructure and not ErrorKind.tests_failed.is_infrastructure


@pytest.mark.parametrize("kind", INFRA)
def test_spoiled_attempts_leave_the_denominators(store, kind):
    store.add(row("t1", 0, True))
    store.add(row("t1", 1, False, kind))  # would halve t1's pass@1 if it counted
    store.add(row("t2", 0, False, kind))  # t2 has no scored attempt: it leaves the denominator
    store.add(row("t3", 0, False, ErrorKind.agent_crash))  # the agent's own crash counts against it
    assert store.pass_at_k("r1", 1) == pytest.approx((1.0 + 0.0) / 2)
    summary = store.summary("r1")["a"]
    assert (summary.tasks, summary.attempts, summary.tasks_passed) == (2, 2, 1)
    assert summary.pass_at_1 == pytest.approx(0.5) and summary.mean_score == pytest.approx(0.5)
    assert summary.infrastructure_failures == 2
    assert summary.error_kinds == dict(sorted({kind.value: 2, "agent_crash": 1}.items()))


def test_only_spoiled_attempts_score_nothing_rather_than_zero_division(store):
    store.add(row("t1", 0, False, ErrorKind.backbone_error))
    assert store.pass_at_k("r1", 1) == 0.0
    summary = store.summary("r1")["a"]
    assert (summary.tasks, summary.attempts, summary.pass_at_1, summary.infrastructure_failures) == (
        0,
        0,
        0.0,
        1,
    )


def test_retried_tries_are_recorded_and_summarised(store):
    store.add_spoiled(SpoiledTry(run_id="r1", agent_id="a", task_id="t1", error_kind=ErrorKind.backbone_error,
                                 detail="backbone restarted while answering"))  # fmt: skip
    store.add_spoiled(SpoiledTry(run_id="r1", agent_id="a", task_id="t1", try_index=1,
                                 error_kind=ErrorKind.docker_error, detail="engine restarted"))  # fmt: skip
    store.add(row("t1", 0, True))  # the third try passed, and is the one that counts
    store.add_spoiled(SpoiledTry(run_id="r1", agent_id="a", task_id="t2", error_kind=ErrorKind.docker_error,
                                 detail="engine gone", retried=False))  # fmt: skip
    store.add(row("t2", 0, False, ErrorKind.docker_error))  # spoiled on its only allowed try
    (first, second, last) = store.spoiled("r1")
    assert (first.try_index, first.error_kind, first.detail) == (
        0,
        ErrorKind.backbone_error,
        "backbone restarted while answering",
    )
    assert second.error_kind is ErrorKind.docker_error and second.retried and store.spoiled("other") == []
    assert not last.retried and last.detail == "engine gone"
    summary = store.summary("r1")["a"]
    assert summary.retried == {"backbone_error": 1, "docker_error": 1}  # the last try of t2 was not retried
    assert (summary.pass_at_1, summary.infrastructure_failures) == (1.0, 1)


def test_one_table_says_whose_fault_every_end_is():
    """StopReason, the gateway's Fault and ErrorKind take the agent/infrastructure split from contract.blame, and
    an end spelt alike in two vocabularies is the same culprit's in both."""
    assert {r for r in StopReason if r.infrastructure} == {
        StopReason.backbone_error, StopReason.gateway_error, StopReason.docker_error,
    }  # fmt: skip
    assert {f for f in Fault if f.infrastructure} == {
        Fault.backbone_unreachable, Fault.backbone_timeout, Fault.backbone_restarted, Fault.backbone_error,
        Fault.backbone_down, Fault.gateway_error, Fault.gateway_closing,
    }  # fmt: skip
    every = {e.value for vocabulary in (StopReason, Fault, ErrorKind) for e in vocabulary}
    assert {e for e in every if blame(e).infrastructure} == set(contract._BLAME)  # no stale entry
    assert blame("no_such_end") is Culprit.agent and not Culprit.agent.infrastructure


@pytest.mark.parametrize("fault", [f for f in Fault if f.infrastructure])
def test_an_infrastructure_fault_ends_the_episode_and_its_row_on_the_same_culprit(fault):
    """A fault the gateway answered with becomes the episode's stop reason, then its row's error kind; each step
    keeps the culprit, so the run retries it and waits for the part that failed."""
    reason = StopReason.spoiled_by(blame(fault.value))
    kind = ErrorKind.of_stop(reason)
    assert reason.infrastructure and kind.is_infrastructure
    assert blame(reason.value) is blame(fault.value) is kind.culprit


def test_an_agents_own_end_is_never_the_infrastructures():
    for reason in StopReason:
        assert ErrorKind.of_stop(reason).is_infrastructure is reason.infrastructure
    assert ErrorKind.of_stop(StopReason.llm_error) is ErrorKind.agent_crash
    assert ErrorKind.of_stop(StopReason.submitted) is ErrorKind.no_submit  # a web page left unfinished
