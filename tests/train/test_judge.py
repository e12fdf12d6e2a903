"""Promotion judged like everything else: paired evidence on agent episodes, a margin, a p-value and a minimum of
tasks, and a fresh validation sample per round.

The end-to-end case runs real agent episodes of the seed agent through ``agentevo.compare`` (real sandboxes, real
evaluator) on a scripted chat model per arm (control flow only: which arm writes which solution), so the evidence
is known exactly: an adapter that wins one task of two looks better by a strict ``>`` and is still refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentevo.compare.promotion import LOOKS_FILE, EpisodeJudge
from agentevo.config import AgentevoConfig
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.tasks import load_suite
from agentevo.train import AdapterRegistry, TrainConfig, promote
from agentevo.train.judge import Evidence, decide
from tests.agents.scripts import call
from tests.train.test_registry import LINEAGE, staged

ADD = "def add(a, b):\n    return a + b\n"


def evidence(**fields: float) -> Evidence:
    given = {"incumbent": "base", "candidate": "agent-v1", "tasks": 20, "difference": 0.3, "p_value": 0.01,
             "test": "t", "won": 6, "lost": 0, "alpha": 0.05, **fields}  # fmt: skip
    return Evidence.model_validate(given)


def test_the_rule_needs_a_gain_above_the_margin_a_small_p_and_enough_tasks() -> None:
    config = TrainConfig(margin=0.05, promote_min_tasks=10)
    assert decide(evidence(), config)[0]
    better, why = decide(evidence(tasks=4, difference=0.25, p_value=1.0, won=1), config)
    assert not better and "fewer tasks than train.promote_min_tasks 10" in why and "p not below 0.05" in why
    assert not decide(evidence(difference=0.05), config)[0]  # not above the margin
    assert not decide(evidence(p_value=0.03, alpha=0.025), config)[0]  # a re-look halves the threshold


def test_each_round_draws_the_tasks_looked_at_least_and_a_relook_lowers_the_threshold(tmp_path: Path) -> None:
    settings = AgentevoConfig(
        archives_dir=tmp_path, train={"adapters_dir": tmp_path / "ad", "validation_sample": 2}
    )
    judge = EpisodeJudge(settings, "builtin")
    validation = {t.id for t in load_suite("builtin", split="validation")}
    assert len(validation) == 4
    first, before = judge.draw()
    judge._looked(t.id for t in first)
    second, again = judge.draw()
    assert before == again == 0 and {t.id for t in first} | {t.id for t in second} == validation  # all fresh
    judge._looked(t.id for t in second)
    _, third = judge.draw()
    assert third == 1  # every task was looked at once: this round's p must be below 0.05 / 2
    assert (tmp_path / "ad" / LOOKS_FILE).is_file()


def scripted_arms(writes: dict[str | None, str]):
    """An arm's backbone: a scripted model whose every reply holds ``writes[arm.adapter]`` both as a python block
    (what the seed agent's direct strategy reads) and as create + submit tool calls (what its tool loop runs)."""

    @contextlib.contextmanager
    def open_arm(arm, settings) -> Iterator[ChatModelBackend]:
        code = writes[arm.adapter]
        reply = call("create", 1, path="solution.py", content=code)
        reply.content = f"```python\n{code}```"
        reply.tool_calls.append(call("submit", 2).tool_calls[0])
        yield ChatModelBackend(ScriptedChatModel(replies=[reply]), "scripted")

    return open_arm


@pytest.mark.timeout(900)
def test_an_adapter_that_wins_one_task_of_two_is_not_promoted(tmp_path: Path, sandbox_image: str) -> None:
    settings = AgentevoConfig(
        archives_dir=tmp_path / "archives",
        train={"adapters_dir": tmp_path / "ad", "validation_sample": 2, "promote_min_tasks": 2},
    )
    registry = AdapterRegistry(tmp_path / "ad")
    name = registry.commit(staged(registry), LINEAGE).name
    judge = EpisodeJudge(settings, "builtin")
    solved = judge.draw()[0][0]  # the candidate solves the first task drawn, the base neither
    judge.backend = scripted_arms({None: ADD, name: solved.canonical_solution or ""})
    decision = promote(registry, name, judge, base_sha256=LINEAGE["base_model_sha256"], config=settings.train)
    scores = decision.scores
    assert decision.action == "keep" and registry.active() is None, decision.reason
    assert scores["tasks"] == 2 and scores["won"] == 1 and scores["lost"] == 0 and scores["difference"] == 0.5
    assert (
        scores["p_value"] == 1.0 and "p not below 0.05" in decision.reason
    )  # a strict > would have promoted
    assert scores["scores"] == {"base": 0.0, name: 0.5}
    assert (Path(scores["comparison"]) / "comparison.json").is_file()  # the episodes are a comparison run
    assert registry.state().decisions[-1].action == "keep"
