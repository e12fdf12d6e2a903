"""A chat model that reaches the LLM gateway over its Unix socket (isolated mode).

The sandbox has no network and no API key: only the socket and an episode token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from agentevo import contract

PASSED_ON = {"temperature", "seed", "response_format", "max_tokens"}  # call options sent with the request


class GatewayChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    socket_path: str
    token: str
    model: str = ""
    max_tokens: int = 512
    timeout: float = 300.0
    tools: list[dict[str, Any]] = Field(default_factory=list)
    _client: openai.OpenAI = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        http = httpx.Client(transport=httpx.HTTPTransport(uds=self.socket_path), timeout=self.timeout)
        self._client = openai.OpenAI(
            base_url=contract.GATEWAY_BASE_URL,
            api_key=self.token,
            http_client=http,  # type: ignore[arg-type]  # openai types httpx2 but takes httpx clients too
            max_retries=0,
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> GatewayChatModel:
        return cls(
            socket_path=os.environ[contract.SOCKET_ENV], token=os.environ[contract.TOKEN_ENV], **kwargs
        )

    @property
    def _llm_type(self) -> str:
        return "agentevo-gateway"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> GatewayChatModel:
        return self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": convert_to_openai_messages(messages),
            "max_tokens": self.max_tokens,
        }
        if self.tools:
            request["tools"] = self.tools
        if stop:
            request["stop"] = stop
        request.update({k: v for k, v in kwargs.items() if k in PASSED_ON})
        reply = self._client.chat.completions.create(**request)
        choice = reply.choices[0].message
        calls = [
            {"name": c.function.name, "args": json.loads(c.function.arguments or "{}"), "id": c.id}
            for c in choice.tool_calls or []
        ]
        usage = reply.usage
        message = AIMessage(
            content=choice.content or "",
            tool_calls=calls,
            usage_metadata={
                "input_tokens": usage.prompt_tokens,
                "output_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            response_metadata={"model_name": reply.model, "finish_reason": reply.choices[0].finish_reason},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
