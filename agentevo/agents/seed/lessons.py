"""Lessons and solved cases from the experience library, read through the gateway with the episode's token.

The host decides whether memory is on; when it is off, or the gateway is unreachable, the agent gets nothing and
runs as before. How they enter the prompt is the agent's own choice: lessons as tips (``prompting.lesson_tips``),
cases as worked examples (``cases_as_demos``). The gateway never serves the episode's own task as a case.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from agentevo import contract

from .genome import DEMO_CHARS, Demo

TIMEOUT_S = 60.0  # the first search may wait for the host to load its embedding model


def _read(route: str, key: str, query: str, k: int) -> list[dict[str, Any]]:
    """``key`` of the gateway's answer to a memory read; [] when memory is off or cannot be reached."""
    socket, token = os.environ.get(contract.SOCKET_ENV), os.environ.get(contract.TOKEN_ENV)
    if not socket or not token:
        return []
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket), timeout=TIMEOUT_S) as client:
            reply = client.post(
                f"{contract.GATEWAY_BASE_URL}/memory/{route}",
                json={"query": query, "k": k},
                headers={"authorization": f"Bearer {token}"},
            )
        return list(reply.json().get(key) or []) if reply.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return []


def fetch_lessons(query: str, k: int = 3) -> list[dict[str, Any]]:
    """Up to ``k`` lessons for ``query``."""
    return _read("search", "lessons", query, k)


def fetch_cases(query: str, k: int) -> list[dict[str, Any]]:
    """Up to ``k`` verified solutions of tasks like ``query`` (never of this episode's own task)."""
    return _read("cases", "cases", query, k)


def cases_as_demos(cases: list[dict[str, Any]]) -> list[Demo]:
    """The cases that fit a worked example's size, as demos (a longer one would crowd out the task)."""
    return [
        Demo(task_id=c["task_id"], task=c["task"], solution=c["solution"])
        for c in cases
        if len(c.get("task", "")) <= DEMO_CHARS and 0 < len(c.get("solution", "")) <= DEMO_CHARS
    ]
