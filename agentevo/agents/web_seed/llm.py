"""The chat call through the LLM gateway's Unix socket: the sandbox has no network and no key but the token."""

from __future__ import annotations

import os

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from agentevo import contract


class GatewayLLM:
    def __init__(self, max_tokens: int, timeout: float = 300.0) -> None:
        http = httpx.Client(
            transport=httpx.HTTPTransport(uds=os.environ[contract.SOCKET_ENV]), timeout=timeout
        )
        self._client = openai.OpenAI(
            base_url=contract.GATEWAY_BASE_URL,
            api_key=os.environ[contract.TOKEN_ENV],
            http_client=http,  # type: ignore[arg-type]  # openai types httpx2 but takes httpx clients too
            max_retries=0,
        )
        self.max_tokens = max_tokens

    def reply(self, messages: list[ChatCompletionMessageParam]) -> tuple[str, int]:
        """The model's text and the tokens the call cost."""
        answer = self._client.chat.completions.create(model="", messages=messages, max_tokens=self.max_tokens)
        tokens = answer.usage.total_tokens if answer.usage else 0
        return answer.choices[0].message.content or "", tokens
