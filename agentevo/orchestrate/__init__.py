"""Orchestration: run an agent over a suite of tasks in isolated episodes, then score each one.

It sits above the pieces it joins (agents, gateway, evaluate), so scoring depends on nothing that runs agents.
"""

from agentevo.kinds.base import episode_error_kind
from agentevo.kinds.coding import outcome_row, score_episode
from agentevo.orchestrate.suite import RunInterrupted, run_suite

__all__ = ["RunInterrupted", "episode_error_kind", "outcome_row", "run_suite", "score_episode"]
