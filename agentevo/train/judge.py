"""Whether a candidate adapter is better than the active model: paired evidence and one rule to read it.

A judge compares the incumbent (the active adapter, or the base weights) with the candidate on the same tasks and
returns :class:`Evidence`: tasks compared, the mean paired difference in pass@1, and a paired test's p-value.
:func:`decide` promotes only when the gain exceeds ``train.margin``, the p-value is below ``train.promote_p``
(divided by the times the tasks were looked at before) and at least ``train.promote_min_tasks`` tasks were compared:
a strict ``>`` on a dozen tasks selects noise.

The judges themselves compare, so they live in :mod:`agentevo.compare.promotion` (agent episodes through
``agentevo.compare``, or a scorer's outcomes with the sign test); training only reads their evidence.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from agentevo.train.config import TrainConfig


class Evidence(BaseModel):
    """The candidate against the incumbent, task by task."""

    incumbent: str
    candidate: str
    tasks: int = Field(description="Tasks both were scored on.")
    difference: float = Field(description="Mean over tasks of the candidate's pass@1 minus the incumbent's.")
    p_value: float
    test: str
    won: int
    lost: int
    alpha: float = Field(
        description="The threshold p must be below: train.promote_p over (1 + earlier looks)."
    )
    scores: dict[str, float] = Field(default_factory=dict, description="pass@1 of each, on these tasks.")
    comparison: str | None = Field(None, description="The comparison's run folder (agent episodes).")


class Judge(Protocol):
    def __call__(self, incumbent: str | None, candidate: str) -> Evidence: ...


def decide(evidence: Evidence, config: TrainConfig) -> tuple[bool, str]:
    """Promote or not, and why in one line."""
    shown = (
        f"{evidence.candidate} vs {evidence.incumbent} on {evidence.tasks} tasks: {evidence.difference:+.3f} "
        f"(won {evidence.won}, lost {evidence.lost}, p = {evidence.p_value:.3g})"
    )
    refusals = []
    if evidence.tasks < config.promote_min_tasks:
        refusals.append(f"fewer tasks than train.promote_min_tasks {config.promote_min_tasks}")
    if evidence.difference <= config.margin:
        refusals.append(f"a gain not above the margin {config.margin}")
    if evidence.p_value >= evidence.alpha:
        refusals.append(f"p not below {evidence.alpha:.3g}")
    if refusals:
        return False, f"kept {evidence.incumbent}: {shown}: {'; '.join(refusals)}"
    return True, f"promoted {evidence.candidate}: {shown}, below {evidence.alpha:.3g}"
