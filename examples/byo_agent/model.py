"""The model, reached only through the gateway's Unix socket with this episode's token (see the contract)."""

from __future__ import annotations

import os

import httpx
import openai

from agentevo import contract


def gateway_client() -> openai.OpenAI:
    """An OpenAI client whose every request goes over the gateway socket."""
    http = httpx.Client(transport=httpx.HTTPTransport(uds=os.environ[contract.SOCKET_ENV]), timeout=300.0)
    return openai.OpenAI(
        base_url=contract.GATEWAY_BASE_URL,
        api_key=os.environ[contract.TOKEN_ENV],
        http_client=http,
        max_retries=0,
    )


def ask(client: openai.OpenAI, prompt: str, max_tokens: int = 400) -> tuple[str, int]:
    """One completion: its text and the tokens it cost."""
    reply = client.chat.completions.create(
        model="", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens
    )
    usage = reply.usage.total_tokens if reply.usage else 0
    return reply.choices[0].message.content or "", usage
