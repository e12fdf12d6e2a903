"""Lessons from the experience library, read through the gateway with the episode's token (read-only).

The host decides whether memory is on; when it is off, or the gateway is unreachable, the agent gets no lessons
and runs as before. How lessons enter the prompt is the agent's own choice (see ``graph.task_prompt``).
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from agentevo import contract

TIMEOUT_S = 60.0  # the first search may wait for the host to load its embedding model


def fetch_lessons(query: str, k: int = 3) -> list[dict[str, Any]]:
    """Up to ``k`` lessons for ``query``; [] when memory is off or cannot be reached."""
    socket, token = os.environ.get(contract.SOCKET_ENV), os.environ.get(contract.TOKEN_ENV)
    if not socket or not token:
        return []
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket), timeout=TIMEOUT_S) as client:
            reply = client.post(
                contract.GATEWAY_BASE_URL + "/memory/search",
                json={"query": query, "k": k},
                headers={"authorization": f"Bearer {token}"},
            )
        return list(reply.json().get("lessons") or []) if reply.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return []
