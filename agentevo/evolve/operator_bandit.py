"""A bandit over operators: which operator makes the next child (``evolve.operators``).

Thompson sampling on Beta(1 + useful, 1 + useless) per operator, counted from the archive by the rule of the bandit
over mutating backbones (``bandit.arms``), keyed by the operator each node records. An operator that cannot make a
child of this parent now (its ``ready`` names why: crossover without a mate, bootstrap without a passed episode) sits
out the draw. The draw is seeded by the archive's state, so a resumed run picks as the killed one would have.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from agentevo.archive import Node
from agentevo.evolve.bandit import arms, thompson
from agentevo.evolve.operators import MutationFailed, Operator, Parent, Proposal


def not_ready(operator: Operator, parent: Node) -> str | None:
    """Why ``operator`` cannot make a child of ``parent`` now (None: it can; operators without ``ready`` always can)."""
    ready = getattr(operator, "ready", None)
    return ready(parent) if ready is not None else None


class OperatorBandit:
    """An operator that hands each expansion to the operator the bandit picks; the child records that operator."""

    name = "bandit"

    def __init__(
        self, operators: dict[str, Operator], nodes: Callable[[], list[Node]], first_stage: str, seed: int
    ) -> None:
        """``nodes``: the archive's records now (``Archive.nodes`` of the run's archive)."""
        self.operators, self.nodes, self.first_stage, self.seed = operators, nodes, first_stage, seed

    def choose(self, parent: str) -> str:
        nodes = self.nodes()
        node = next(n for n in nodes if n.id == parent)
        open_ = [name for name, op in self.operators.items() if not_ready(op, node) is None]
        if not open_:
            reasons = "; ".join(f"{name}: {not_ready(op, node)}" for name, op in self.operators.items())
            raise MutationFailed(f"no operator can make a child of {parent} now ({reasons})")
        by_operator = [n.model_copy(update={"mutator": n.operator}) for n in nodes]
        rng = random.Random(f"{self.seed}/operator/{len(nodes)}/{parent}")
        return thompson(arms(by_operator, open_, self.first_stage), rng)

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        name = self.choose(parent.id)
        try:
            proposal = self.operators[name].propose(parent, workdir)
        except MutationFailed as exc:  # named, so evolve_errors.log says which operator made nothing
            raise MutationFailed(f"{name}: {exc}") from None
        return proposal.model_copy(update={"operator": name})
