"""Agents: the seed coding agent and the two ways to run one (SDK mode, isolated mode)."""

from agentevo.agents.episode import (
    EpisodeOutcome,
    SandboxWorkspace,
    StopReason,
    run_isolated,
    run_sdk,
    seed_agent_dir,
)

__all__ = ["EpisodeOutcome", "SandboxWorkspace", "StopReason", "run_isolated", "run_sdk", "seed_agent_dir"]
