"""The loop's knobs: the genome's settings (``genome.json``) within the budget the runner passes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .genome import FOLDER, SYSTEM_FILE, CandidateFilter, Demo, Genome, Tool

# A declared text surface: the reflect operator may rewrite it; the agent reads it at import.
SYSTEM_PROMPT = (FOLDER / SYSTEM_FILE).read_text().strip()

NUDGE = "Please use one of the tools. When your solution is written and tested, call submit."
SAVED_CODE = (
    "I saved your code block to {path}. Test it with the bash tool, fix it if needed, then call submit."
)


class AgentConfig(BaseModel):
    max_steps: int = Field(12, ge=1, description="Model calls before the episode stops.")
    max_tokens: int = Field(
        20_000, ge=1, description="Tokens (prompt + completion) before the episode stops."
    )
    command_timeout: float = Field(30.0, gt=0, description="Seconds per bash command.")
    observation_chars: int = Field(
        3000, ge=200, description="Longest tool output shown to the model (head + tail)."
    )
    system_prompt: str = SYSTEM_PROMPT
    nudge: str = NUDGE
    saved_code: str = SAVED_CODE
    tools: list[Tool] = Field(default_factory=lambda: list(Tool), description="The tools the model may call.")
    temperature: float | None = Field(None, ge=0.0, description="None: the backbone's own.")
    demos: list[Demo] = Field(default_factory=list, description="Worked examples shown before the task.")
    check_examples: bool = Field(False, description="Submit only once the statement's examples pass.")


def loop_config(genome: Genome, max_steps: int, max_tokens: int) -> AgentConfig:
    """The loop's settings from ``genome``; the runner's budget caps its steps."""
    return AgentConfig(
        max_steps=min(genome.max_steps, max_steps),
        max_tokens=max_tokens,
        tools=genome.tools,
        system_prompt=genome.system_prompt(SYSTEM_PROMPT),
        temperature=genome.temperature,
        demos=genome.demos,
        check_examples=genome.filter is CandidateFilter.examples,
    )
