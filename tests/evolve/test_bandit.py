"""The bandit over mutating backbones: its counts and Thompson draw on a fixed archive (the formula), and in the
loop on real Docker with scripted operators (control flow, no model): the backbone whose children help is asked
more, and each node records which backbone made it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from agentevo.archive import Archive, Gate, Node, StageScore
from agentevo.config.evolve import Stage
from agentevo.evolve.bandit import Arm, MutatorBandit, arms, thompson
from agentevo.evolve.start import _operator, evolve_run, open_run
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.backbone import BackboneSetupError
from agentevo.llm.scripted import ScriptedChatModel
from tests.evolve import scripted


def node(id: str, parent: str | None, mutator: str | None, passed: bool | None, score: float | None) -> Node:
    return Node(
        id=id, parent=parent, commit="0" * 40, mutator=mutator,
        gate=None if passed is None else Gate(passed=passed),
        scores={} if score is None else {"small": StageScore(score=score, tasks=2)},
    )  # fmt: skip


def test_counts_and_the_thompson_draw_on_a_fixed_archive() -> None:
    nodes = [
        node("n0", None, None, True, 0.5),
        node("n1", "n0", "a", True, 1.0),  # better than its parent: useful
        node("n6", "n0", "c", True, 0.5),  # as good as its parent: a tie is not help
        node("n2", "n0", "a", False, None),  # refused by its gate: useless
        node("n3", "n1", "b", True, 0.0),  # below its parent: useless
        node("n4", "n1", "b", True, None),  # not scored yet: not counted
        node("n5", "n1", "c", None, None),  # no gate yet: not counted
    ]
    assert arms(nodes, ["a", "b", "c"], "small") == [Arm("a", 1, 1), Arm("b", 0, 1), Arm("c", 0, 1)]
    rng = random.Random(7)
    picks = Counter(thompson([Arm("a", 1, 1), Arm("b", 0, 1)], rng) for _ in range(4000))
    # P(Beta(2, 2) > Beta(1, 2)) = 6 * integral of (x - x^2)(2x - x^2) over [0, 1] = 0.7
    assert abs(picks["a"] / 4000 - 0.7) < 0.03


@pytest.mark.timeout(900)
def test_the_backbone_whose_children_help_is_asked_more(tmp_path, sandbox_image) -> None:
    archives = tmp_path / "archives"
    config, evolve = scripted.settings(archives, contract_check=False, stages=[Stage(name="small", tasks=1)])
    run, evolve = open_run(
        config, evolve, seed=scripted.weakened_seed(tmp_path / "seed"), budgets={"max_nodes": 9}
    )

    def nodes() -> list[Node]:
        with Archive.open(run.path) as archive:
            return archive.nodes()

    operators = {
        "helpful": scripted.ScriptedOperator([scripted.fix, scripted.comment]),
        "useless": scripted.ScriptedOperator([scripted.no_change]),
    }
    bandit = MutatorBandit(operators, nodes, "small", seed=3)
    status = evolve_run(
        config, evolve, run, backend=scripted.backend(), mutator_backend=scripted.backend(), operator=bandit,
        tasks=scripted.tasks(),
    )  # fmt: skip
    assert status.error is None and status.nodes == 9
    made = Counter(n.mutator for n in nodes()[1:])
    assert sum(made.values()) == 8 and made["helpful"] > made["useless"], made
    helpful, useless = arms(nodes(), ["helpful", "useless"], "small")
    # The helpful backbone's fix beats its parent; its comments on a fixed parent tie, which is no help.
    assert helpful.useful >= 1 and useless.useful == 0
    assert helpful.useful + helpful.useless + useless.useless == 8


def test_mutating_backbones_with_one_name_are_refused_before_anything_runs(tmp_path) -> None:
    config, evolve = scripted.settings(tmp_path / "archives", contract_check=False)
    run, evolve = open_run(config, evolve, seed=scripted.weakened_seed(tmp_path / "seed"))
    twins = [ChatModelBackend(ScriptedChatModel(replies=["x"]), "same") for _ in range(2)]
    with pytest.raises(BackboneSetupError, match="distinct `model`"):
        evolve_run(
            config, evolve, run, backend=scripted.backend(), mutator_backend=twins, tasks=scripted.tasks()
        )
    two = [ChatModelBackend(ScriptedChatModel(replies=["x"]), name) for name in ("a", "b")]
    with (
        Archive.open(run.path) as archive,
        Gateway(two[0], run_dir=run.path, run_id=run.run_id) as ga,
        Gateway(two[1], run_dir=run.path, run_id=run.run_id) as gb,
    ):
        chosen = _operator(config, evolve, archive, run, [ga, gb])
    assert (
        isinstance(chosen, MutatorBandit) and set(chosen.operators) == {"a", "b"} and chosen.name == "reflect"
    )
