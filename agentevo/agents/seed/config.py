"""The seed agent's knobs. Evolution may change the defaults; the runner may override them."""

from pathlib import Path

from pydantic import BaseModel, Field

PROMPTS = Path(__file__).resolve().parent / "prompts"
# A declared text surface: the reflect operator may rewrite it; the agent reads it at import.
SYSTEM_PROMPT = (PROMPTS / "system.md").read_text().strip()

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
