"""Parent selection: which admitted node the next expansion starts from.

Each policy is the formula of the system it is named after (see ``docs``/research notes), over
:class:`NodeStats`; randomness comes only from the ``random.Random`` passed in, so a seeded run repeats.
Categorical policies expose ``weights`` (the probabilities their formula gives) so tests check the formula
itself, not samples of it.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Protocol

from agentevo.evolve.config import PolicyName
from agentevo.evolve.stats import NodeStats


class NoParent(RuntimeError):
    """No node can be a parent yet: none is admitted and scored (score the seed first)."""


class Policy(Protocol):
    name: PolicyName

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str: ...


def candidates(nodes: list[NodeStats]) -> list[NodeStats]:
    chosen = [n for n in nodes if n.selectable]
    if not chosen:
        raise NoParent("no admitted node has a score yet; the seed must pass its gate and be evaluated first")
    return chosen


def _draw(weights: dict[str, float], rng: random.Random) -> str:
    ids = list(weights)
    return rng.choices(ids, weights=[weights[i] for i in ids], k=1)[0]


def _normalised(raw: dict[str, float]) -> dict[str, float]:
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()} if total > 0 else {k: 1 / len(raw) for k in raw}


class DGM:
    """DGM's ``score_child_prop``: p ∝ sigmoid(10 (score - 0.5)) × 1 / (1 + children)."""

    name = PolicyName.dgm

    def __init__(self, steepness: float = 10.0, midpoint: float = 0.5) -> None:
        self.steepness, self.midpoint = steepness, midpoint

    def weights(self, nodes: list[NodeStats]) -> dict[str, float]:
        raw = {
            n.id: 1 / (1 + math.exp(-self.steepness * (n.score - self.midpoint))) / (1 + n.children)
            for n in candidates(nodes)
        }
        return _normalised(raw)

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        return _draw(self.weights(nodes), rng)


class HGM:
    """HGM: Thompson sampling on clade-level counts, θ_a ~ Beta(1 + s(clade a), 1 + f(clade a)), argmax.

    A clade is a node and all its descendants; every task result in it counts once (HGM's own code appends
    the clade into each node's list by aliasing; we count copies). ``expand`` is HGM's tree-size schedule.
    """

    name = PolicyName.hgm

    def __init__(self, alpha: float = 0.6) -> None:
        self.alpha = alpha

    @staticmethod
    def clade_counts(nodes: list[NodeStats]) -> dict[str, tuple[float, float]]:
        """(successes, failures) over each node's clade, rejected descendants' results included."""
        kids: dict[str | None, list[NodeStats]] = defaultdict(list)
        for node in nodes:
            kids[node.parent].append(node)

        def count(node: NodeStats) -> tuple[float, float]:
            s, f = node.successes, node.evals - node.successes
            for child in kids[node.id]:
                cs, cf = count(child)
                s, f = s + cs, f + cf
            return s, f

        return {n.id: count(n) for n in nodes}

    def expand(self, task_evals: int, nodes: int, pending_expansions: int) -> bool:
        """Expand (rather than evaluate further) while N^α ≥ non-seed nodes + expansions in flight."""
        return task_evals**self.alpha >= (nodes - 1) + pending_expansions

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        counts = self.clade_counts(nodes)
        draws = {n.id: rng.betavariate(1 + counts[n.id][0], 1 + counts[n.id][1]) for n in candidates(nodes)}
        return max(draws, key=draws.__getitem__)


class SICA:
    """SICA: the latest node whose mean is at least the best node's lower confidence bound,
    LCB = mean_best - z · std_best / sqrt(n_best) (std over the best node's per-task scores)."""

    name = PolicyName.sica

    def __init__(self, z: float = 1.96) -> None:
        self.z = z

    def lower_bound(self, nodes: list[NodeStats]) -> float:
        best = max(candidates(nodes), key=lambda n: (n.score, -n.order))
        values = list(best.tasks.values())
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return mean - self.z * std / math.sqrt(len(values))

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        bound = self.lower_bound(nodes)
        for node in sorted(candidates(nodes), key=lambda n: n.order, reverse=True):
            if node.score >= bound:
                return node.id
        raise AssertionError("the best node is always within its own bound")


class Pareto:
    """GEPA: nodes on the per-task Pareto front (best on at least one task, and not led on a strict superset
    of their tasks by another), sampled in proportion to how many tasks each leads."""

    name = PolicyName.pareto

    @staticmethod
    def leads(nodes: list[NodeStats]) -> dict[str, set[str]]:
        pool = candidates(nodes)
        best: dict[str, float] = {}
        for node in pool:
            for task, score in node.tasks.items():
                best[task] = max(best.get(task, 0.0), score)
        led = {n.id: {t for t, s in n.tasks.items() if best[t] > 0 and s == best[t]} for n in pool}
        return {
            a: tasks for a, tasks in led.items() if tasks and not any(tasks < other for other in led.values())
        }

    def weights(self, nodes: list[NodeStats]) -> dict[str, float]:
        front = self.leads(nodes)
        if not front:  # nobody solved anything: every candidate is as good as another
            return _normalised({n.id: 1.0 for n in candidates(nodes)})
        return _normalised({node: float(len(tasks)) for node, tasks in front.items()})

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        return _draw(self.weights(nodes), rng)


class Greedy:
    """Baseline: always the best score (ties: the earlier node, which has been confirmed longer)."""

    name = PolicyName.greedy

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        return max(candidates(nodes), key=lambda n: (n.score, -n.order)).id


class Latest:
    """Baseline (DGM's ``no_darwin``): hill-climb on the newest admitted node."""

    name = PolicyName.latest

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        return max(candidates(nodes), key=lambda n: n.order).id


class Uniform:
    """Baseline: any admitted, scored node with equal chance."""

    name = PolicyName.random

    def weights(self, nodes: list[NodeStats]) -> dict[str, float]:
        return _normalised({n.id: 1.0 for n in candidates(nodes)})

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        return _draw(self.weights(nodes), rng)


POLICIES: dict[PolicyName, type[Policy]] = {
    p.name: p for p in (DGM, HGM, SICA, Pareto, Greedy, Latest, Uniform)
}


def make_policy(name: PolicyName) -> Policy:
    return POLICIES[name]()
