"""The ``evolve`` section of the configuration: which policy and operator, how many workers, budgets, stages."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from agentevo.llm.config import LLMConfig


class PolicyName(str, Enum):
    dgm = "dgm"
    hgm = "hgm"
    sica = "sica"
    pareto = "pareto"
    greedy = "greedy"
    latest = "latest"
    random = "random"


class OperatorName(str, Enum):
    reflect = "reflect"
    meta = "meta"
    self = "self"


class Stage(BaseModel):
    """One evaluation stage: its tasks are the suite's next ``tasks`` after the earlier stages' tasks; a node
    reaches it only when its score on the stage before is at least ``threshold``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tasks: int = Field(ge=1)
    threshold: float = Field(0.0, ge=0.0, le=1.0)


class EvolveConfig(BaseModel):
    """How ``agentevo evolve`` searches. Budgets: the run stops cleanly at the first one reached."""

    model_config = ConfigDict(extra="forbid")

    policy: PolicyName = PolicyName.dgm
    operator: OperatorName = OperatorName.reflect
    coder: str | None = Field(
        None,
        description="The meta operator's coding agent: an agent folder or a node id (default: the seed).",
    )
    suite: str = "builtin"
    split: str = Field("train", description="The split evolution scores on; keep validation/test held out.")
    stages: list[Stage] = Field(
        default_factory=lambda: [Stage(name="small", tasks=3), Stage(name="large", tasks=6, threshold=0.34)],
        min_length=1,
    )
    workers: int = Field(2, ge=1, description="Jobs (expansions, gates, evaluations) at once.")
    episode_parallel: int = Field(1, ge=1, description="Episodes at once within one evaluation job.")
    max_steps: int = Field(6, ge=1, description="Model calls per task episode.")
    coder_steps: int = Field(12, ge=1, description="Model calls of the meta operator's coding agent.")
    coder_time_limit: float = Field(900.0, gt=0, description="Seconds for one meta-step.")
    max_nodes: int = Field(6, ge=1, description="Budget: nodes in the archive, the seed included.")
    max_tokens: int | None = Field(None, ge=1, description="Budget: tokens of every LLM call of the run.")
    max_seconds: float | None = Field(
        None, gt=0, description="Budget: wall-clock seconds of this invocation."
    )
    protected: list[str] = Field(
        default_factory=lambda: ["run.py"],
        description="Globs of agent files no child may change (run.py prints the contract's result line).",
    )
    surfaces: list[str] = Field(
        default_factory=lambda: ["prompts/*.md"], description="Globs of the text files reflect may rewrite."
    )
    contract_check: bool = Field(True, description="Gate children on `agentevo agent check` (smoke episode).")
    failures_shown: int = Field(3, ge=1, description="Failed episodes a diagnosis or reflection reads.")
    seed: int = Field(0, description="Seeds parent selection.")
    mutator_timeout: float = Field(
        600.0, gt=0, description="Seconds for one diagnosis or reflection call (long prompts on slow CPUs)."
    )
    mutator: LLMConfig | None = Field(
        None, description="Backbone of diagnoses and meta-steps (default: the task backbone, `llm`)."
    )
