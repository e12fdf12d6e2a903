"""A bandit over several mutating backbones (ShinkaEvolve's LLM bandit): which model makes the next child.

Each expansion asks one of ``evolve.mutators``. The pick is Thompson sampling on Beta(1 + useful, 1 + useless)
per backbone, counted from the archive alone: a child is *useful* when it was admitted and scored better than
its parent on the first stage (the same tasks for both), *useless* when its gate refused it or it did not beat
its parent (a tie is no evidence of help: a child that changed nothing that matters ties), and not counted
while undecided. The draw is seeded by the archive's state, so a resumed run picks as the killed one
would have; each node records the backbone that made it (``Node.mutator``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentevo.archive import Node
from agentevo.evolve.operators import Operator, Parent, Proposal


@dataclass(frozen=True)
class Arm:
    """One backbone's record: children that helped and children that did not."""

    name: str
    useful: int = 0
    useless: int = 0


def arms(nodes: list[Node], names: list[str], first_stage: str) -> list[Arm]:
    """Each backbone's counts over the archive's decided children."""
    by_id = {n.id: n for n in nodes}
    counts = {name: [0, 0] for name in names}
    for node in nodes:
        if node.mutator not in counts or node.parent is None or node.gate is None:
            continue
        verdict = _useful(node, by_id[node.parent], first_stage)
        if verdict is not None:
            counts[node.mutator][0 if verdict else 1] += 1
    return [Arm(name, *counts[name]) for name in names]


def _useful(child: Node, parent: Node, stage: str) -> bool | None:
    if child.gate is not None and not child.gate.passed:
        return False
    if stage not in child.scores or stage not in parent.scores:
        return None
    return child.scores[stage].score > parent.scores[stage].score


def thompson(options: list[Arm], rng: random.Random) -> str:
    """The arm with the highest Beta(1 + useful, 1 + useless) draw."""
    return max(options, key=lambda a: rng.betavariate(1 + a.useful, 1 + a.useless)).name


class MutatorBandit:
    """An operator that hands each expansion to the operator of the backbone the bandit picks."""

    def __init__(
        self, operators: dict[str, Operator], nodes: Callable[[], list[Node]], first_stage: str, seed: int
    ) -> None:
        """``nodes``: the archive's records now (``Archive.nodes`` of the run's archive)."""
        kinds = {op.name for op in operators.values()}
        if len(kinds) != 1:
            raise ValueError(f"the bandit's operators must be of one kind, not {sorted(kinds)}")
        self.operators, self.nodes, self.first_stage, self.seed = operators, nodes, first_stage, seed
        self.name = kinds.pop()

    def choose(self) -> str:
        nodes = self.nodes()
        rng = random.Random(f"{self.seed}/mutator/{len(nodes)}")
        return thompson(arms(nodes, list(self.operators), self.first_stage), rng)

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        name = self.choose()
        return self.operators[name].propose(parent, workdir).model_copy(update={"mutator": name})
