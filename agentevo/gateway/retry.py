"""How the gateway retries a call the backbone failed: tenacity, bounded by count and the episode's time.

An agent should not pay for the machine's faults. A call that failed for a reason that may pass (the backbone
refused the connection, answered 5xx, or was restarted under it) is sent again after a short pause, once the
watchdog says the backbone is back; the caller sees one answer, and the call's record lists the failed tries.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.stop import stop_base

from agentevo.gateway.backends import BackboneError

T = TypeVar("T")


class RequestRetry(BaseModel):
    """Retries of one gateway call after a retryable backbone fault (``Fault.retryable``)."""

    retries: int = Field(6, ge=0, description="Tries after the first; 0 answers the first failure as it is.")
    first_wait: float = Field(0.25, ge=0, description="Seconds before the first retry; doubles each time.")
    max_wait: float = Field(4.0, ge=0, description="Longest pause between two tries.")
    ready_timeout: float = Field(
        180.0, gt=0, description="How long one try waits for a restarting backbone to be ready again."
    )


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackboneError) and exc.retryable


class _Past(stop_base):
    """A tenacity stop: no retry once the caller's wall-clock ``deadline`` (``time.time()``) has passed."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline is not None and time.time() >= self.deadline


async def call_with_retries(
    attempt: Callable[..., Awaitable[T]],
    arg: object,
    policy: RequestRetry,
    *,
    deadline: float | None,
    on_retry: Callable[[BackboneError], None],
) -> T:
    """``attempt(arg)`` (a coroutine function: tenacity awaits only those), again after each retryable ``BackboneError`` until it answers, the policy's count is used
    up or ``deadline`` passes; then the last error is raised as it is. ``on_retry`` is told of every failed
    try that is retried (so the caller can record and count it)."""

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, BackboneError):
            on_retry(error)

    retrying = AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(policy.retries + 1) | _Past(deadline),
        wait=wait_exponential(multiplier=policy.first_wait, min=policy.first_wait, max=policy.max_wait),
        before_sleep=note,
        reraise=True,
    )
    return await retrying(attempt, arg)
