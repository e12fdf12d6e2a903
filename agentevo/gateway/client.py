"""The host's own client of a gateway: an OpenAI client over the gateway's Unix socket, with an episode token.

Host-side callers (the evolution loop's diagnoses and reflections) use this one; agents bring their own client
inside their package, so the host never imports an agent's code.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai

from agentevo import contract


def gateway_client(socket_path: str | Path, token: str, *, timeout: float) -> openai.OpenAI:
    """A client whose every call is metered, recorded and budgeted by the gateway as the episode ``token``."""
    http = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), timeout=timeout)
    return openai.OpenAI(base_url=contract.GATEWAY_BASE_URL, api_key=token, http_client=http, max_retries=0)
