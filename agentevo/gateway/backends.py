"""What the gateway forwards to: an OpenAI-compatible HTTP endpoint, or a chat model in this process."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Protocol

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages


class BackboneError(Exception):
    """The backbone failed; ``status`` is the HTTP status the gateway answers with."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class Backend(Protocol):
    """An OpenAI chat-completions endpoint, seen from the gateway."""

    model: str

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a chat.completions request body with a chat.completion response body."""

    async def models(self) -> list[str]:
        """Model (and adapter) names this backend serves."""

    async def aclose(self) -> None: ...


class HTTPBackend:
    """Forwards to an OpenAI-compatible server (vLLM, a hosted API), adding the API key on the way."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)
        self._timeout = timeout

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("POST", "/chat/completions", body)

    async def models(self) -> list[str]:
        listing = await self._send("GET", "/models", None)
        return [entry["id"] for entry in listing.get("data", [])]

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException:
            raise BackboneError(
                504,
                f"backbone at {self.base_url} did not answer within {self._timeout:g} s",
                "backbone_timeout",
            ) from None
        except httpx.HTTPError as exc:
            raise BackboneError(
                502,
                f"backbone unreachable at {self.base_url}: {exc.__class__.__name__}: {exc}",
                "backbone_unreachable",
            ) from None
        if response.status_code >= 400:
            # The backbone's own 4xx (bad model name, context too long) is the caller's to fix.
            status = response.status_code if response.status_code < 500 else 502
            raise BackboneError(
                status, f"backbone answered {response.status_code}: {response.text[:500]}", "backbone_error"
            )
        try:
            return response.json()
        except ValueError:
            raise BackboneError(
                502, f"backbone answered with non-JSON: {response.text[:200]!r}", "backbone_error"
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()


def _openai_tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    return [
        {
            "id": call["id"] or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in message.tool_calls
    ]


class ChatModelBackend:
    """Serves any LangChain chat model (the embedded local model) as an OpenAI endpoint.

    Requests that carry ``tools`` go through the model's ``bind_tools``; the local model's answers with
    fenced actions, parsed back into tool calls, so agents get OpenAI tool calls from a text-only model.
    """

    def __init__(self, chat_model: BaseChatModel, model: str) -> None:
        self.chat_model = chat_model
        self.model = model

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            messages = convert_to_messages(body["messages"])
        except (ValueError, TypeError, KeyError) as exc:
            raise BackboneError(
                400, f"messages are not valid chat messages: {exc}", "invalid_request"
            ) from None
        chat_model = self._chat_model_for(body.get("model"))
        runnable = chat_model.bind_tools(body["tools"]) if body.get("tools") else chat_model
        options: dict[str, Any] = {}
        stop = body.get("stop")
        if stop:
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit:
            options["max_tokens"] = int(limit)
        try:
            reply = await asyncio.to_thread(runnable.invoke, messages, **options)
        except Exception as exc:  # noqa: BLE001 - the model's failure is reported, the gateway stays up
            raise BackboneError(
                502, f"local model failed: {exc.__class__.__name__}: {exc}", "backbone_error"
            ) from None
        return self._response(reply)

    def _chat_model_for(self, name: str | None) -> BaseChatModel:
        """The request's ``model`` picks a LoRA adapter on backbones that serve several (they have ``for_model``)."""
        select = getattr(self.chat_model, "for_model", None)
        if not name or name == self.model or select is None:
            return self.chat_model
        try:
            return select(name)
        except LookupError as exc:
            raise BackboneError(404, str(exc), "model_not_found") from None

    def _response(self, reply: AIMessage) -> dict[str, Any]:
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content if isinstance(reply.content, str) else str(reply.content),
        }
        finish = reply.response_metadata.get("finish_reason", "stop")
        if reply.tool_calls:
            message["tool_calls"] = _openai_tool_calls(reply)
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": usage["input_tokens"],
                "completion_tokens": usage["output_tokens"],
                "total_tokens": usage["input_tokens"] + usage["output_tokens"],
            },
        }

    async def models(self) -> list[str]:
        return [self.model]

    async def aclose(self) -> None:
        return None
