"""Parent selection: which admitted node the next expansion starts from.

Each policy is the rule of the system it is named after, as that system's own code computes it (each
docstring names the code and every deviation), over :class:`NodeStats`; randomness comes only from the
``random.Random`` passed in, so a seeded run repeats. Categorical policies expose ``weights`` (the
probabilities their rule gives) so tests check the rule itself, not samples of it.

Like with like: nodes are evaluated in stages, so one node may have 3 tasks scored and another 30. The
policies that compare means (DGM, SICA, greedy) compare them on the tasks every candidate has scored
(``shared_tasks``), never a 3-task mean against a 30-task one. Pareto compares task by task (a node is
on a task's front only among the nodes that ran it); HGM counts successes and failures, which its
Beta posterior already weighs by how many there are. Memory and adapters that change during a run are
not corrected for: a run that learns while it evolves compares nodes scored under different conditions.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Protocol

from agentevo.archive.stats import NodeStats, shared_tasks
from agentevo.config.evolve import PolicyName


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
    """DGM's ``choose_selfimproves(method="score_child_prop")`` in ``DGM_outer.py``:
    p ∝ sigmoid(10 (score - 0.5)) × 1 / (1 + children).

    As in that code, ``children`` counts the children in the archive (admitted ones); a refused child
    never entered DGM's archive, so it does not starve its parent. Deviation: ``score`` is the mean on
    the tasks every candidate has scored (DGM scores every archived node on the same benchmark tasks).
    """

    name = PolicyName.dgm

    def __init__(self, steepness: float = 10.0, midpoint: float = 0.5) -> None:
        self.steepness, self.midpoint = steepness, midpoint

    def weights(self, nodes: list[NodeStats]) -> dict[str, float]:
        pool = candidates(nodes)
        shared = shared_tasks(pool)
        raw = {
            n.id: 1 / (1 + math.exp(-self.steepness * (n.mean_on(shared) - self.midpoint))) / (1 + n.children)
            for n in pool
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
    LCB = mean_best - z · std_best / sqrt(n), on the tasks every candidate has scored.

    Deviation: a bound from a handful of tasks is so wide that every node is within it (the rule becomes
    ``latest``), so only nodes scored on at least ``min_tasks`` tasks compete while any are; before that,
    all do, on their shared tasks.
    """

    name = PolicyName.sica

    def __init__(self, z: float = 1.96, min_tasks: int = 10) -> None:
        self.z, self.min_tasks = z, min_tasks

    def pool(self, nodes: list[NodeStats]) -> list[NodeStats]:
        pool = candidates(nodes)
        seasoned = [n for n in pool if n.evals >= self.min_tasks]
        return seasoned if len(seasoned) > 1 or (seasoned and len(pool) == 1) else pool

    def lower_bound(self, nodes: list[NodeStats]) -> float:
        pool = self.pool(nodes)
        shared = shared_tasks(pool)
        best = max(pool, key=lambda n: (n.mean_on(shared), -n.order))
        values = [best.tasks[t] for t in shared] or list(best.tasks.values())
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return mean - self.z * std / math.sqrt(len(values))

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        bound = self.lower_bound(nodes)
        pool = self.pool(nodes)
        shared = shared_tasks(pool)
        for node in sorted(pool, key=lambda n: n.order, reverse=True):
            if node.mean_on(shared) >= bound:
                return node.id
        raise AssertionError("the best node is always within its own bound")


class Pareto:
    """GEPA's ``select_program_candidate_from_pareto_front`` (``gepa/gepa_utils.py``).

    Each task has a front: the nodes with the best score on it, a tie at 0 included (GEPA's fronts start
    with the seed on every task and keep every program that ties the best). ``remove_dominated_programs``
    then drops, one at a time in order of ascending mean score, a node each of whose fronts holds another
    node still standing; the survivors are sampled in proportion to the number of fronts they are on.
    So of two nodes on the same fronts only the better-scoring one survives, and a cycle of covers loses
    members until none is covered. Deviation: a node is on a task's front only among the nodes that
    ran that task (GEPA scores every program on the whole validation set).
    """

    name = PolicyName.pareto

    @staticmethod
    def fronts(nodes: list[NodeStats]) -> dict[str, set[str]]:
        """Each task's front: the candidates with the best score on it."""
        pool = candidates(nodes)
        best: dict[str, float] = {}
        for node in pool:
            for task, score in node.tasks.items():
                best[task] = max(best.get(task, score), score)
        return {task: {n.id for n in pool if n.tasks.get(task) == top} for task, top in best.items()}

    @classmethod
    def survivors(cls, nodes: list[NodeStats]) -> dict[str, int]:
        """The undominated nodes and the number of fronts each is on (GEPA's sampling frequencies)."""
        fronts = list(cls.fronts(nodes).values())
        means = {n.id: n.score for n in candidates(nodes)}
        standing = sorted({p for front in fronts for p in front}, key=lambda p: (means[p], p))
        removed = True
        while removed:
            removed = False
            for node in standing:
                others = set(standing) - {node}
                if all(front & others for front in fronts if node in front):
                    standing.remove(node)
                    removed = True
                    break
        return {p: sum(p in front for front in fronts) for p in standing}

    def weights(self, nodes: list[NodeStats]) -> dict[str, float]:
        return _normalised({node: float(count) for node, count in self.survivors(nodes).items()})

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        return _draw(self.weights(nodes), rng)


class Greedy:
    """Baseline: always the best mean on the shared tasks (ties: the earlier node, confirmed longer)."""

    name = PolicyName.greedy

    def choose(self, nodes: list[NodeStats], rng: random.Random) -> str:
        pool = candidates(nodes)
        shared = shared_tasks(pool)
        return max(pool, key=lambda n: (n.mean_on(shared), -n.order)).id


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
