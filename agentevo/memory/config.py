"""The ``memory`` section of the configuration: where the library lives, how it is searched, bounded and guarded."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RankWeights(BaseModel):
    """How retrieval re-ranks the candidates the vector search over-fetched (each part is in [0, 1])."""

    model_config = ConfigDict(extra="forbid")

    similarity: float = Field(
        0.6, ge=0, description="Cosine similarity of the query to the lesson's trigger."
    )
    keywords: float = Field(0.15, ge=0, description="Share of the query's words found in trigger and tags.")
    usefulness: float = Field(
        0.15,
        ge=0,
        description="(wins + 1) / (wins + losses + 2) from paired re-runs, else (helped + 1) / (helped + hurt + 2).",
    )
    recency: float = Field(0.1, ge=0, description="Half-life decay since the lesson was last updated.")


class GuardConfig(BaseModel):
    """Poisoning defence (after A-MemGuard): what sends a lesson to quarantine, where it is never retrieved."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    related_similarity: float = Field(
        0.6, ge=0, le=1, description="Trigger similarity at which two lessons count as related."
    )
    min_consensus: int = Field(
        2, ge=1, description="Related lessons from other sources needed before a consensus is judged."
    )
    conflict_similarity: float = Field(
        0.35,
        ge=0,
        le=1,
        description="A lesson whose advice is less similar than this to the consensus of its related lessons "
        "conflicts with it.",
    )
    harm_neighbours: int = Field(
        2, ge=1, description="Nearest bank entries averaged by the resemblance check."
    )
    harm_similarity: float = Field(
        0.325,
        ge=0,
        le=1,
        description="Mean similarity to the nearest harmful advice of the bank at which a lesson is suspect "
        "(chosen by leave-one-out on the bank; see docs/memory.md for the rates on held-out sets).",
    )
    harm_margin: float = Field(
        0.02,
        ge=-1,
        le=1,
        description="How much closer to harmful than to benign advice a suspect lesson must be to be quarantined.",
    )
    max_hurt: int = Field(
        3,
        ge=1,
        description="Outcomes that went wrong after a single-source lesson was used, before quarantine.",
    )
    protected: list[str] = Field(
        default_factory=lambda: [
            r"\b(delete|remove|skip|disable|weaken|comment out|rewrite|edit|modify|loosen)\b[^.]{0,40}\btests?\b",
            r"\btests?\b[^.]{0,40}\b(delete|remove|skip|disable|weaken|comment out)",
            r"\bassert\s+true\b|\bpytest\.skip\b|\bexit\(0\)|\bexit\w*\b[^.]{0,30}\bcode 0\b",
            r"(/etc/|/root/|/usr/|~/\.|\.ssh|\.git/|/var/run/docker\.sock|/tmp/agentpkg)",
        ],
        description="Regular expressions (case-insensitive) for advice that no lesson may give: weakening or "
        "deleting tests, or writing to protected paths.",
    )


class MemoryConfig(BaseModel):
    """Experience memory: lessons distilled from trajectories, kept in ChromaDB (see docs/memory.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Whether `agentevo run` and `agentevo evolve` use memory.")
    path: Path | None = Field(
        None, description="Persist directory of the library (default: <archives_dir>/memory)."
    )
    url: str | None = Field(
        None,
        description="A running `agentevo memory serve` (http://127.0.0.1:PORT) to use instead of starting one.",
    )
    port: int = Field(0, ge=0, le=65535, description="Port `agentevo memory serve` listens on (0: any free).")
    cap: int = Field(
        2000, ge=1, description="Most lessons the library holds; consolidation and eviction keep it under."
    )
    top_k: int = Field(3, ge=1, le=20, description="Lessons a retrieval returns.")
    overfetch: int = Field(8, ge=1, description="Candidates fetched per lesson returned, before re-ranking.")
    min_similarity: float = Field(
        0.35, ge=0, le=1, description="Lessons whose trigger is less similar to the query are not relevant."
    )
    merge_similarity: float = Field(
        0.9, ge=0, le=1, description="Trigger similarity from which a new lesson is the same situation."
    )
    advice_similarity: float = Field(
        0.8,
        ge=0,
        le=1,
        description="For the same situation: advice at least this similar merges, less similar supersedes.",
    )
    case_similarity: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Solved cases whose task is less similar to the new one are not served as worked examples.",
    )
    learn: bool = Field(
        True,
        description="Whether episodes write back (outcome counts, solved cases). Off: the library is read "
        "only, as `agentevo compare` uses it on held-out tasks.",
    )
    half_life_days: float = Field(30.0, gt=0, description="Recency half-life in the ranking.")
    weights: RankWeights = Field(default_factory=RankWeights)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    distil: bool = Field(
        True,
        description="With memory on, after `agentevo run` and after each evolution node's first stage: reflect "
        "on each scored episode and write the lessons that pass verification.",
    )
    distil_max_lessons: int = Field(3, ge=1, le=10, description="Lessons proposed per trajectory.")
    verify_attempts: int = Field(
        1,
        ge=0,
        description="Paired re-runs (with the lesson, and without it: the control) per task before a proposed "
        "lesson is written; it must win more pairs than it loses (0: verification off).",
    )
    verify_neighbours: int = Field(
        0,
        ge=0,
        le=5,
        description="Similar tasks of the run a proposed lesson is also verified on (so a lesson from a passed "
        "episode, which cannot win on its own task, can show it helps elsewhere).",
    )
