"""The diagnosis: one LLM call that reads a parent's failed episodes and names one concrete change.

DGM's two-stage meta-step (diagnose, then implement) with one difference: the diagnoser never sees the hidden
tests, only what the agent saw and the evaluator's verdict kind, so a child cannot be tuned to the tests' text.
"""

from __future__ import annotations

from pathlib import Path

from agentevo.evolve.evidence import FailedEpisode
from agentevo.gateway.client import HostLLM

SYSTEM = """You improve a coding agent: a Python package that solves programming tasks with an LLM and tools.
Read how it works and the episodes it failed, then name ONE concrete, general change to its code or prompts
that would make it solve more tasks (not specific to one task). Answer with the change only: which file, what
to change, and why, in at most 15 lines."""


def describe_agent(folder: Path) -> str:
    """The agent as a diagnoser reads it: its AGENT.md when it has one, else its file list."""
    manual = folder / "AGENT.md"
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    about = manual.read_text()[:6000] if manual.is_file() else ""
    return f"{about}\n\nFiles: {', '.join(files)}"


def diagnose(mutator: HostLLM, parent_id: str, folder: Path, failed: list[FailedEpisode]) -> str:
    episodes = (
        "\n\n".join(f.render() for f in failed) or "(no failed episode: make it more reliable in general)"
    )
    user = f"# The agent\n{describe_agent(folder)}\n\n# Failed episodes\n{episodes}\n\nThe one change:"
    return mutator.ask(SYSTEM, user, agent_id=parent_id, purpose="diagnose").strip()
