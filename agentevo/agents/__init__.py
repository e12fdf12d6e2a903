"""Agents: the seed coding agent, and the two ways to run one (isolated mode for any agent, SDK mode for the seed)."""

from agentevo.agents.episode import EpisodeBudget, EpisodeOutcome, StopReason, run_isolated, seed_agent_dir
from agentevo.agents.sdk import SandboxWorkspace, run_sdk

__all__ = [
    "EpisodeBudget",
    "EpisodeOutcome",
    "SandboxWorkspace",
    "StopReason",
    "run_isolated",
    "run_sdk",
    "seed_agent_dir",
]
