"""Each parent-selection policy's formula on a fixed archive (plain data: no Docker, no model)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from agentevo.archive.stats import NodeStats
from agentevo.evolve.policies import DGM, HGM, SICA, Greedy, Latest, NoParent, Pareto, Uniform

# n2 was rejected at its gate; n4 is the newest. Per-task scores over tasks a-d. n0's children in the
# archive are n1 and n4: the refused n2 does not count (DGM's children_count).
ARCHIVE = [
    NodeStats(id="n0", order=0, children=2, tasks={"a": 0, "b": 0, "c": 1, "d": 0}),
    NodeStats(id="n1", parent="n0", order=1, children=1, tasks={"a": 1, "b": 1, "c": 0, "d": 0}),
    NodeStats(id="n2", parent="n0", order=2, admitted=False),
    NodeStats(id="n3", parent="n1", order=3, tasks={"a": 1, "b": 1, "c": 1, "d": 0}),
    NodeStats(id="n4", parent="n0", order=4, tasks={"a": 0, "b": 0, "c": 1, "d": 1}),
]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-10 * (x - 0.5)))


def test_dgm_is_sigmoid_of_score_over_one_plus_children():
    raw = {"n0": sigmoid(0.25) / 3, "n1": sigmoid(0.5) / 2, "n3": sigmoid(0.75) / 1, "n4": sigmoid(0.5) / 1}
    total = sum(raw.values())
    weights = DGM().weights(ARCHIVE)
    assert weights.keys() == raw.keys()  # the rejected n2 is never a parent
    for node, value in raw.items():
        assert weights[node] == pytest.approx(value / total)
    assert weights["n3"] == pytest.approx(0.92414 / (0.07586 / 3 + 0.25 + 0.92414 + 0.5), rel=1e-4)


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


def test_sica_bounds_on_enough_tasks():
    # Twelve tasks for the seed and a good child; a newer child has three lucky ones. On three tasks the bound
    # is so wide that SICA would take the newest (latest); with min_tasks=10 only the seasoned nodes compete.
    twelve = {f"t{i}": float(i < 10) for i in range(12)}
    nodes = [
        NodeStats(id="seed", order=0, tasks={f"t{i}": float(i < 3) for i in range(12)}),
        NodeStats(id="good", parent="seed", order=1, tasks=twelve),
        NodeStats(id="lucky", parent="seed", order=2, tasks={"t0": 1.0, "t1": 1.0, "t2": 1.0}),
    ]
    mean = 10 / 12
    bound = mean - 1.96 * math.sqrt(mean * (1 - mean)) / math.sqrt(12)
    assert SICA().lower_bound(nodes) == pytest.approx(bound)
    assert SICA().choose(nodes, random.Random(0)) == "good"
    assert SICA(min_tasks=3).choose(nodes, random.Random(0)) == "lucky"  # the old behaviour, for contrast


def test_pareto_samples_the_front_by_tasks_led():
    assert Pareto.fronts(ARCHIVE) == {
        "a": {"n1", "n3"},
        "b": {"n1", "n3"},
        "c": {"n0", "n3", "n4"},
        "d": {"n4"},
    }
    # By ascending mean: n0 (c is covered by n3, n4) goes, then n1 (a, b by n3); n4 alone on d, n3 alone on a.
    assert Pareto.survivors(ARCHIVE) == {"n3": 3, "n4": 2}
    assert Pareto().weights(ARCHIVE) == pytest.approx({"n3": 0.6, "n4": 0.4})


def test_pareto_follows_gepa_on_equal_sets_cycles_and_all_zero_tasks():
    # Two nodes on the same fronts: only the one with the higher mean stands (the strict-subset rule kept both).
    same = [
        NodeStats(id="x", order=0, tasks={"t1": 1, "t2": 0.2}),
        NodeStats(id="y", order=1, tasks={"t1": 1, "t2": 0.2, "t3": 1}),
    ]
    assert Pareto.survivors(same) == {"y": 3}
    # A cycle of covers (each task led by two nodes): GEPA removes nodes one by one until none is covered.
    cycle = [
        NodeStats(id="a", order=0, tasks={"t1": 1, "t2": 1, "t3": 0}),
        NodeStats(id="b", order=1, tasks={"t1": 0, "t2": 1, "t3": 1}),
        NodeStats(id="c", order=2, tasks={"t1": 1, "t2": 0, "t3": 1}),
    ]
    assert Pareto.survivors(cycle) == {"b": 2, "c": 2}  # a (first by mean, then id) is covered on t1 and t2
    # A task nobody solved is still a front (everyone ties at 0), and counts for who stands on it.
    zero = [
        NodeStats(id="p", order=0, tasks={"t0": 0, "t1": 1}),
        NodeStats(id="q", order=1, tasks={"t0": 0, "t1": 0}),
    ]
    assert Pareto.survivors(zero) == {"p": 2}


def test_means_are_compared_on_shared_tasks_only():
    # The child scored 3 easy first-stage tasks; the seed all 6. On the shared three the seed is better.
    staged = [
        NodeStats(id="seed", order=0, children=1, tasks={"a": 1, "b": 1, "c": 1, "d": 0, "e": 0, "f": 0}),
        NodeStats(id="child", parent="seed", order=1, tasks={"a": 1, "b": 0, "c": 1}),
    ]
    assert Greedy().choose(staged, random.Random(0)) == "seed"  # 1.0 vs 0.67, not 0.5 vs 0.67
    raw = {"seed": sigmoid(1.0) / 2, "child": sigmoid(2 / 3)}
    assert DGM().weights(staged) == pytest.approx({k: v / sum(raw.values()) for k, v in raw.items()})


def test_dgm_counts_only_archived_children():
    from agentevo.archive import Node
    from agentevo.archive.node import Gate
    from agentevo.archive.stats import archived_children

    nodes = [
        Node(id="n0", commit="c0", gate=Gate(passed=True)),
        Node(id="n1", parent="n0", commit="c1", gate=Gate(passed=False, reason="empty_diff")),
        Node(id="n2", parent="n0", commit="c2", gate=Gate(passed=False, reason="empty_diff")),
        Node(id="n3", parent="n0", commit="c3", gate=Gate(passed=True)),
        Node(id="n4", parent="n0", commit="c4"),  # not gated yet
    ]
    assert archived_children(nodes) == {"n0": 1}


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
