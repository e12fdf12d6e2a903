"""The ``evolve`` section of the configuration: which policy and operator, how many workers, budgets, stages.

It lives with the root configuration, not in ``agentevo.evolve``: evolution reads the whole configuration, so the
root must not import from it.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    mutate = "mutate"
    crossover = "crossover"
    bootstrap = "bootstrap"


# Operators that change only the genome and prompt files (no model call): their children differ by data, so only
# an exact duplicate is refused, never a near one (two samples counts differ by one character of diff).
GENOME_OPERATORS = frozenset(
    op.value for op in (OperatorName.mutate, OperatorName.crossover, OperatorName.bootstrap)
)


class SafetyMode(str, Enum):
    """What the misevolution probes do with a child (``safety``)."""

    strict = "strict"  # probe every admitted node; refuse a child whose probe score is below its parent's
    record = "record"  # probe and record; refuse only a child that cheats on a canary (as strict does too)
    off = "off"  # no probes


class ExecutorName(str, Enum):
    local = "local"  # threads of this process (episodes run in sandboxes either way)
    ray = "ray"  # contract checks and evaluations fan out as Ray tasks (a local Ray, or --ray-address)


class Price(BaseModel):
    """What a model's tokens cost, in dollars per million."""

    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(ge=0.0)
    completion: float = Field(ge=0.0)


class Stage(BaseModel):
    """One evaluation stage: its tasks are the suite's next ``tasks`` after the earlier stages' tasks (None: all
    the rest of the split, a full evaluation; only the last stage may say so); a node reaches it only when its
    score on the stage before is at least ``threshold`` and, with ``top``, it is among the ``top`` best there."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tasks: int | None = Field(None, ge=1)
    threshold: float = Field(0.0, ge=0.0, le=1.0)
    top: int | None = Field(
        None, ge=1, description="Only the best nodes on the stage before reach this one (full evaluations)."
    )


class EvolveConfig(BaseModel):
    """How ``agentevo evolve`` searches. Budgets: the run stops cleanly at the first one reached."""

    model_config = ConfigDict(extra="forbid")

    policy: PolicyName = PolicyName.dgm
    operator: OperatorName = OperatorName.reflect
    operators: list[OperatorName] = Field(
        default_factory=list,
        description="Several operators (instead of `operator`): each expansion uses the one a Thompson bandit picks "
        "by how often its children beat their parents; one that cannot act yet (crossover without a mate) sits out.",
    )
    coder: str | None = Field(
        None,
        description="The meta operator's coding agent: an agent folder or a node id (default: the seed).",
    )
    suite: str = "builtin"
    split: str = Field("train", description="The split evolution scores on; keep validation/test held out.")
    stages: list[Stage] = Field(
        default_factory=lambda: [
            Stage(name="small", tasks=3),
            Stage(name="large", tasks=6, threshold=0.34),
            Stage(name="full", threshold=0.34, top=2),
        ],
        min_length=1,
    )

    @model_validator(mode="after")
    def _full_stage_last(self) -> EvolveConfig:
        if any(stage.tasks is None for stage in self.stages[:-1]):
            raise ValueError(
                "only the last of evolve.stages may leave `tasks` out (all the rest of the split)"
            )
        if self.stages[0].top is not None:
            raise ValueError("evolve.stages[0] cannot have `top`: there is no stage before it to rank by")
        return self

    executor: ExecutorName = ExecutorName.local
    ray_address: str | None = Field(None, description="A Ray cluster to join (default: start a local one).")
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
    max_dollars: float | None = Field(
        None, gt=0, description="Budget: dollars of every LLM call, from token counts and `prices`."
    )
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="Per model name (as the gateway records it; `*` for any other): dollars per 1M tokens.",
    )
    protected: list[str] = Field(
        default_factory=lambda: ["run.py"],
        description="Globs of agent files no child may change (run.py prints the contract's result line).",
    )
    surfaces: list[str] = Field(
        default_factory=lambda: ["prompts/*.md"], description="Globs of the text files reflect may rewrite."
    )
    contract_check: bool = Field(True, description="Gate children on `agentevo agent check` (smoke episode).")
    check_time_limit: float = Field(
        180.0, gt=0, description="Seconds for the contract check's smoke episode."
    )
    near_duplicate: float | None = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="Refuse a child whose normalised diff is at least this similar to an earlier node's (None: off).",
    )
    safety: SafetyMode = Field(SafetyMode.strict, description="The misevolution probes (see SafetyMode).")
    probe_steps: int = Field(4, ge=1, description="Model calls per safety probe episode.")
    probe_time_limit: float = Field(300.0, gt=0, description="Seconds for one safety probe episode.")
    failures_shown: int = Field(3, ge=1, description="Failed episodes a diagnosis or reflection reads.")
    seed: int = Field(0, description="Seeds parent selection.")
    mutator_timeout: float = Field(
        600.0, gt=0, description="Seconds for one diagnosis or reflection call (long prompts on slow CPUs)."
    )
    mutator: LLMConfig | None = Field(
        None, description="Backbone of diagnoses and meta-steps (default: the task backbone, `llm`)."
    )
    mutators: list[LLMConfig] = Field(
        default_factory=list,
        description="Several mutating backbones (instead of `mutator`): each expansion asks the one a Thompson "
        "bandit picks by how often its children matched or beat their parents. Their `model` names must differ.",
    )
