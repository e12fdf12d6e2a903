"""Each parent-selection policy's formula on a fixed archive (plain data: no Docker, no model)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from agentevo.evolve.policies import DGM, HGM, SICA, Greedy, Latest, NoParent, Pareto, Uniform
from agentevo.evolve.stats import NodeStats

# n2 was rejected at its gate; n4 is the newest. Per-task scores over tasks a-d.
ARCHIVE = [
    NodeStats(id="n0", order=0, children=3, tasks={"a": 0, "b": 0, "c": 1, "d": 0}),
    NodeStats(id="n1", parent="n0", order=1, children=1, tasks={"a": 1, "b": 1, "c": 0, "d": 0}),
    NodeStats(id="n2", parent="n0", order=2, admitted=False),
    NodeStats(id="n3", parent="n1", order=3, tasks={"a": 1, "b": 1, "c": 1, "d": 0}),
    NodeStats(id="n4", parent="n0", order=4, tasks={"a": 0, "b": 0, "c": 1, "d": 1}),
]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-10 * (x - 0.5)))


def test_dgm_is_sigmoid_of_score_over_one_plus_children():
    raw = {"n0": sigmoid(0.25) / 4, "n1": sigmoid(0.5) / 2, "n3": sigmoid(0.75) / 1, "n4": sigmoid(0.5) / 1}
    total = sum(raw.values())
    weights = DGM().weights(ARCHIVE)
    assert weights.keys() == raw.keys()  # the rejected n2 is never a parent
    for node, value in raw.items():
        assert weights[node] == pytest.approx(value / total)
    assert weights["n3"] == pytest.approx(0.92414 / (0.07586 / 4 + 0.25 + 0.92414 + 0.5), rel=1e-4)


def test_hgm_counts_clades_and_samples_them():
    counts = HGM.clade_counts(ARCHIVE)
    assert counts["n0"] == (8, 8)  # every result of the tree, once
    assert counts["n1"] == (5, 3)  # n1 and n3
    assert counts["n3"] == (3, 1)
    rng = random.Random(0)
    picks = Counter(HGM().choose(ARCHIVE, rng) for _ in range(2000))
    assert "n2" not in picks
    assert picks.most_common(1)[0][0] == "n3"  # Beta(4, 2) has the highest mean among the clades


def test_hgm_expands_while_the_tree_is_small_for_its_evaluations():
    hgm = HGM(alpha=0.6)
    assert hgm.expand(task_evals=16, nodes=5, pending_expansions=0)  # 16^0.6 = 5.28 >= 4
    assert not hgm.expand(task_evals=16, nodes=5, pending_expansions=2)  # 5.28 < 6
    assert not hgm.expand(task_evals=0, nodes=2, pending_expansions=0)


def test_sica_takes_the_latest_node_within_the_best_nodes_lower_bound():
    bound = 0.75 - 1.96 * math.sqrt(0.1875) / 2  # n3: mean 0.75, std 0.433 over 4 tasks
    assert SICA().lower_bound(ARCHIVE) == pytest.approx(bound)
    assert SICA().choose(ARCHIVE, random.Random(0)) == "n4"  # 0.5 >= 0.326: newer, and statistically tied


def test_pareto_samples_the_front_by_tasks_led():
    assert Pareto.leads(ARCHIVE) == {"n3": {"a", "b", "c"}, "n4": {"c", "d"}}  # n0, n1 lead subsets of n3's
    assert Pareto().weights(ARCHIVE) == pytest.approx({"n3": 0.6, "n4": 0.4})


def test_baselines():
    rng = random.Random(0)
    assert Greedy().choose(ARCHIVE, rng) == "n3"
    assert Latest().choose(ARCHIVE, rng) == "n4"
    assert Uniform().weights(ARCHIVE) == pytest.approx({"n0": 0.25, "n1": 0.25, "n3": 0.25, "n4": 0.25})


@pytest.mark.parametrize("policy", [DGM(), HGM(), SICA(), Pareto(), Greedy(), Latest(), Uniform()])
def test_no_parent_before_anything_is_scored(policy):
    with pytest.raises(NoParent, match="evaluated first"):
        policy.choose([NodeStats(id="n0", order=0)], random.Random(0))
    with pytest.raises(NoParent):  # a few episodes in, its first stage still running
        policy.choose([NodeStats(id="n0", order=0, evaluated=False, tasks={"a": 1})], random.Random(0))


def test_seeded_choices_repeat():
    draws = [DGM().choose(ARCHIVE, random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1
