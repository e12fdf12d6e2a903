"""Scoring a web episode: the reward the page itself recorded, read by the host from the browser server.

Knows nothing of what acted on the page. The page's own check (MiniWoB++'s ``core.endEpisode``) decides
the reward; the browser server's guard keeps the first result of the episode in a closure that page
scripts cannot write, and only the host's control socket can ask for it. The agent's account is never read.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class PageResult(Protocol):
    done: bool
    raw_reward: float
    reward: float
    reason: str | None


class WebScore(BaseModel):
    """One episode's verdict. ``raw_reward`` is the page's (-1 wrong .. 1 right); ``reward`` is decayed by time."""

    task_id: str
    done: bool = Field(description="Whether the page ended the episode (right or wrong).")
    raw_reward: float
    reward: float
    reason: str | None = None

    @property
    def passed(self) -> bool:
        """Success as BrowserGym counts it: the page ended the episode with a positive raw reward."""
        return self.done and self.raw_reward > 0

    @property
    def score(self) -> float:
        """The raw reward clipped to [0, 1] (a wrong answer and no answer both score 0)."""
        return min(max(self.raw_reward, 0.0), 1.0) if self.done else 0.0


def score_page(task_id: str, result: PageResult) -> WebScore:
    """The verdict for ``task_id`` from what the page recorded."""
    return WebScore(
        task_id=task_id,
        done=result.done,
        raw_reward=float(result.raw_reward),
        reward=float(result.reward),
        reason=result.reason,
    )
