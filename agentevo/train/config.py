"""Settings of the optional weight-update loop: datasets, LoRA training, the adapter registry, promotion."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The linear projections of Llama-family blocks (SmolLM2 included). Never lm_head or the embeddings: SmolLM2
# ties them, and vLLM refuses adapters that carry full lm_head/embedding weights.
LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Recipe(StrEnum):
    """How training data is made from recorded trajectories."""

    rft = "rft"  # rejection-sampling / STaR SFT: the assistant turns of verified-passed episodes
    dpo = "dpo"  # preference pairs: a passed and a failed episode of one task, at the turn where they part
    self_consistency = "self-consistency"  # majority answer over k samples, inside an agreement band


class HintKind(StrEnum):
    """What a STaR rationalisation re-attempt is told (see ``agentevo.train.rationalise``)."""

    reference = "reference"  # the task's reference solution (HumanEval, MBPP, the built-in suite ship one)
    feedback = "feedback"  # the failed attempt and the evaluator's feedback on it (never the hidden tests)


class TrainConfig(BaseModel):
    """``train``: where adapters live, how they are trained, and when a new one replaces the active one."""

    model_config = ConfigDict(extra="forbid")

    adapters_dir: Path = Field(Path("adapters"), description="The adapter registry: <name>-v<k>/ folders.")
    name: str = Field(
        "agent", pattern=r"^[a-z][a-z0-9_]*$", description="Adapter family name; versions are <name>-v<k>."
    )
    # -- data
    per_task_cap: int = Field(
        4,
        ge=1,
        description="Most distinct passed episodes (RFT) or pairs (DPO) kept per task (ReST-EM caps).",
    )
    agreement_min: float = Field(
        0.3, ge=0, le=1, description="Self-consistency: lowest majority share kept (R-Zero's band)."
    )
    agreement_max: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Self-consistency: highest majority share kept (easier tasks teach little).",
    )
    # -- STaR rationalisation (while sampling)
    rationalise: bool = Field(
        False,
        description="Re-attempt train-split tasks no sample solved, with a hint; a verified answer is trained on "
        "under the hint-free prompt (rows marked rationalised).",
    )
    rationalise_tries: int = Field(1, ge=1, description="Hinted re-attempts per unsolved task at most.")
    hints: list[HintKind] = Field(
        default_factory=lambda: [HintKind.reference, HintKind.feedback],
        min_length=1,
        description="Hint kinds by preference: a re-attempt gets the first one its task offers.",
    )
    # -- sampling rounds (B-STaR) and self-play (R-Zero / Absolute Zero)
    k: int = Field(
        4, ge=1, description="Samples per task in a sampling round (and per proposal in its band)."
    )
    temperatures: list[float] = Field(
        default_factory=lambda: [0.4, 0.8, 1.2],
        min_length=1,
        description="B-STaR's grid: a probe round at each on the first probe_tasks tasks; the best balance wins.",
    )
    probe_tasks: int = Field(4, ge=1, description="Tasks each temperature of the grid is probed on.")
    proposals: int = Field(
        0, ge=0, description="Self-play: tasks the backbone proposes per round (0: no self-play)."
    )
    propose_examples: int = Field(
        2, ge=1, le=4, description="Train-split tasks shown as the style to follow in each proposal request."
    )
    band_min: float = Field(
        0.1, ge=0, le=1, description="Self-play: lowest share of the k solver samples that pass, kept."
    )
    band_max: float = Field(
        0.9, ge=0, le=1, description="Self-play: highest share kept (a task always solved teaches little)."
    )
    # -- LoRA and the optimiser
    lora_r: int = Field(8, ge=1, description="LoRA rank; must not exceed the server's max_lora_rank.")
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(LLAMA_LINEAR))
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(4, ge=1)
    max_length: int = Field(1024, ge=32, description="Tokens per example; longer ones are truncated.")
    dpo_beta: float = Field(0.1, gt=0)
    max_steps: int = Field(60, ge=1, description="Optimiser steps at most.")
    max_seconds: float = Field(900.0, gt=0, description="Training stops after this much wall time.")
    save_steps: int = Field(10, ge=1, description="Checkpoint every N steps (a killed run resumes there).")
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores).")
    seed: int = 0
    # -- promotion
    margin: float = Field(
        0.0,
        ge=0,
        description="A new adapter is promoted only if its paired pass@1 gain over the active one exceeds this.",
    )
    promote_p: float = Field(
        0.05,
        gt=0,
        le=1,
        description="...and the paired test's p-value is below this (corrected for re-looks).",
    )
    promote_min_tasks: int = Field(
        10, ge=1, description="...and at least this many validation tasks were compared."
    )
    validation_sample: int = Field(
        20,
        ge=1,
        description="Validation tasks drawn per promotion, the least looked-at first (fresh each round).",
    )
    promote_attempts: int = Field(1, ge=1, description="Agent episodes per validation task and arm.")
    eval_max_tokens: int = Field(384, ge=1, description="Tokens per direct-prompt answer of a TaskScorer.")
    # -- interleaving with code evolution
    interleave_every: int | None = Field(
        None, ge=1, description="Fine-tune and try to promote every N admitted archive nodes (None: never)."
    )

    @model_validator(mode="after")
    def _band(self) -> TrainConfig:
        if self.agreement_min > self.agreement_max:
            raise ValueError(
                f"agreement_min {self.agreement_min} is above agreement_max {self.agreement_max}"
            )
        if self.band_min > self.band_max:
            raise ValueError(f"band_min {self.band_min} is above band_max {self.band_max}")
        return self
