"""The seed web agent's knobs. Evolution may change the defaults; the runner sets the budgets."""

from pathlib import Path

from pydantic import BaseModel, Field

PROMPTS = Path(__file__).resolve().parent / "prompts"
# A declared text surface: the reflect operator may rewrite it; the agent reads it at import.
SYSTEM_PROMPT = (PROMPTS / "system.md").read_text().strip()
NUDGE = 'That was not an action. Answer with one line such as click(4) or fill(3, "text").'


class WebAgentConfig(BaseModel):
    max_steps: int = Field(8, ge=1, description="Model calls before the episode stops.")
    max_tokens: int = Field(
        20_000, ge=1, description="Tokens (prompt + completion) before the episode stops."
    )
    reply_tokens: int = Field(48, ge=8, description="Longest model reply: one action needs few tokens.")
    observation_chars: int = Field(2500, ge=200, description="Longest page tree shown to the model.")
    history: int = Field(4, ge=0, description="Earlier actions (and their errors) shown to the model.")
    system_prompt: str = SYSTEM_PROMPT
    nudge: str = NUDGE
