"""Budgets (tokens, calls, wall time) and the usage that is charged against them."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field


class Budget(BaseModel):
    """Limits for a run or an episode; None means unlimited."""

    max_tokens: int | None = Field(None, ge=1)
    max_calls: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)


class Usage(BaseModel):
    """What has been spent so far; the cost ledger of a run or an episode."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    retries: int = Field(
        0, description="Tries sent again after a retryable backbone fault (not extra calls)."
    )
    infrastructure_errors: int = Field(
        0, description="Calls answered with an infrastructure fault after retries."
    )
    started: float = Field(default_factory=time.time)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def exceeded(self, budget: Budget, scope: str) -> str | None:
        """Why another call would break ``budget``, or None if it may go ahead."""
        if budget.max_calls is not None and self.calls >= budget.max_calls:
            return f"{scope} budget exceeded: {self.calls}/{budget.max_calls} calls used"
        if budget.max_tokens is not None and self.tokens >= budget.max_tokens:
            return f"{scope} budget exceeded: {self.tokens}/{budget.max_tokens} tokens used"
        elapsed = time.time() - self.started
        if budget.max_seconds is not None and elapsed >= budget.max_seconds:
            return f"{scope} budget exceeded: {elapsed:.0f}/{budget.max_seconds:.0f} s of wall time used"
        return None
