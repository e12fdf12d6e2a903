"""What the gateway forwards to: an OpenAI-compatible HTTP endpoint, or a chat model in this process."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages

from agentevo.contract import blame
from agentevo.llm.schema_tools import FAILURE_KEY
from agentevo.llm.structured import (
    SchemaUnsupported,
    StructuredFailure,
    cut_off_reply,
    failure_of,
    requested_schema,
)
from agentevo.llm.supervised import AdapterServer, ServerError, served_by

T = TypeVar("T")
SAMPLING = ("temperature", "top_p", "seed")  # a request's sampling options, passed on to an in-process model


class Fault(StrEnum):
    """Why the gateway could not answer a call; the value is the error ``type`` clients see.

    The caller's faults are the agent's to fix; the others belong to the infrastructure and must never count
    against the agent. Only faults the agent cannot provoke are infrastructure faults.
    """

    # The caller's.
    unauthorized = "unauthorized"
    invalid_request = "invalid_request"
    request_too_large = "request_too_large"
    model_not_found = "model_not_found"
    budget_exceeded = "budget_exceeded"
    # The backbone's.
    backbone_unreachable = "backbone_unreachable"  # connection refused or reset: dead, or restarting
    backbone_timeout = (
        "backbone_timeout"  # no answer within llm.timeout (not retried: it would wait as long again)
    )
    backbone_restarted = "backbone_restarted"  # the watchdog found it dead or hung while it was answering
    backbone_error = "backbone_error"  # it answered 5xx or nonsense, or the in-process model raised
    backbone_down = "backbone_down"  # it stayed down: the watchdog gave up, or it did not come back in time
    # The gateway's.
    gateway_error = "gateway_error"  # a bug in the gateway or a backend adapter
    gateway_closing = "gateway_closing"  # the run ended (or was interrupted) while the call was in flight

    @property
    def retryable(self) -> bool:
        """Worth sending again after a pause: the backbone may be back by then."""
        return self in _RETRYABLE

    @property
    def infrastructure(self) -> bool:
        """Not the caller's doing: an episode that ends on it is retried and never scored against the agent."""
        return blame(self.value).infrastructure


# Whose fault each is, the contract says (``contract.blame``). Of the backbone's, these are worth a retry: a hung
# supervised backbone is cut off by its watchdog (backbone_restarted) long before a timeout; a timeout means an
# unwatched endpoint stopped answering, and asking it again would cost another full timeout.
_RETRYABLE = frozenset({Fault.backbone_unreachable, Fault.backbone_restarted, Fault.backbone_error})


class BackboneError(Exception):
    """The backbone failed; ``status`` is the HTTP status the gateway answers with, ``kind`` says whose fault."""

    def __init__(self, status: int, message: str, kind: Fault) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind

    @property
    def retryable(self) -> bool:
        return self.kind.retryable


class BackboneHealth(Protocol):
    """What the gateway needs from a backbone's watchdog (``agentevo.llm.watchdog.BackboneWatchdog``)."""

    restarts: int  # how often the backbone was brought back in this run
    restart_seconds: list[float]  # how long each restart took, fault seen to healthy

    @property
    def ready(self) -> bool:
        """True while the backbone is up (not being restarted, not given up on)."""

    @property
    def failure(self) -> str | None:
        """Why the watchdog gave up on the backbone (it will not come back in this run), else None."""

    def on_fault(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the watchdog's thread) each time the backbone is found dead or hung; returns
        what to call to stop (a gateway stops when it closes: one backbone may serve many gateways in turn)."""

    def wait_ready(self, timeout: float) -> bool:
        """Block while the backbone is being restarted (at most ``timeout`` s); True when it is up."""


class Backend(Protocol):
    """An OpenAI chat-completions endpoint, seen from the gateway."""

    model: str
    health: BackboneHealth | None  # a supervised backbone's watchdog; None where nothing watches it

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a chat.completions request body with a chat.completion response body."""

    async def models(self) -> list[str]:
        """Model (and adapter) names this backend serves."""

    async def aclose(self) -> None: ...


class HTTPBackend:
    """Forwards to an OpenAI-compatible server (vLLM, a hosted API), adding the API key on the way."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """``temperature`` and ``max_tokens`` (``llm.temperature``, ``llm.max_tokens``) do what they do for an
        in-process model: the temperature of a request that names none (a server's own default is not greedy),
        and the most tokens a request may ask for."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.temperature, self.max_tokens = temperature, max_tokens
        self.health: BackboneHealth | None = None  # a remote API: nobody here can restart it
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)
        self._timeout = timeout

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send("POST", "/chat/completions", self._with_settings(body))

    def _with_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the backbone's temperature where it names none, and its token limit capped."""
        out = dict(body)
        if out.get("temperature") is None and self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens:
            key = "max_completion_tokens" if out.get("max_completion_tokens") else "max_tokens"
            asked = out.get(key)
            out[key] = min(int(asked), self.max_tokens) if asked else self.max_tokens
        return out

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
                Fault.backbone_timeout,
            ) from None
        except httpx.HTTPError as exc:
            raise BackboneError(
                502,
                f"backbone unreachable at {self.base_url}: {exc.__class__.__name__}: {exc}",
                Fault.backbone_unreachable,
            ) from None
        if response.status_code >= 400:
            # The backbone's own 4xx (bad model name, context too long) is the caller's to fix.
            if response.status_code < 500:
                status, kind = response.status_code, Fault.invalid_request
            else:
                status, kind = 502, Fault.backbone_error
            raise BackboneError(
                status, f"backbone answered {response.status_code}: {response.text[:500]}", kind
            )
        try:
            return response.json()
        except ValueError:
            raise BackboneError(
                502, f"backbone answered with non-JSON: {response.text[:200]!r}", Fault.backbone_error
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


async def in_daemon_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Await blocking ``fn`` run in a thread of its own that the event loop never waits for.

    Unlike ``asyncio.to_thread`` (the loop's default executor, which the loop joins when it closes), a call
    abandoned because the backbone restarted or the gateway closed finishes or fails by itself, and its late
    answer is dropped: it can never be scheduled onto a closed loop or keep the gateway from closing.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(outcome: Callable[[], object]) -> None:
        if not future.done():  # cancelled: nobody waits for this answer any more
            outcome()

    def work() -> None:
        try:
            outcome = functools.partial(future.set_result, fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome = functools.partial(future.set_exception, exc)
        try:
            loop.call_soon_threadsafe(deliver, outcome)
        except RuntimeError:
            pass  # the loop is closed: the gateway stopped and the answer has no reader

    threading.Thread(target=work, name="agentevo-backbone-call", daemon=True).start()
    return await future


def _model_fault(exc: Exception) -> BackboneError:
    """A chat model's exception as the gateway answers it: the caller's 4xx, or the backbone's fault."""
    if isinstance(exc, openai.APITimeoutError):
        return BackboneError(504, f"the backbone did not answer in time: {exc}", Fault.backbone_timeout)
    if isinstance(exc, openai.APIConnectionError | ServerError | httpx.TransportError):
        return BackboneError(
            502, f"backbone unreachable: {exc.__class__.__name__}: {exc}", Fault.backbone_unreachable
        )
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return BackboneError(
            exc.status_code, f"the backbone refused the request: {exc}", Fault.invalid_request
        )
    if isinstance(exc, SchemaUnsupported):
        return BackboneError(400, f"{StructuredFailure.refused.value}: {exc}", Fault.invalid_request)
    return BackboneError(502, f"local model failed: {exc.__class__.__name__}: {exc}", Fault.backbone_error)


def supervised_server(backend: Backend) -> AdapterServer | None:
    """The llama.cpp or vLLM server agentevo runs behind ``backend`` (where adapters are loaded), or None."""
    return served_by(backend.chat_model) if isinstance(backend, ChatModelBackend) else None


def structured_failure(request: dict[str, Any], response: dict[str, Any] | None) -> str | None:
    """Why an answer does not hold the structure its request asked for (a ``StructuredFailure`` value), or None.

    A chat-model backend says so itself (``structured_failure`` on the choice, for tool calls held to a schema);
    for any backend, a ``response_format`` answer that is no usable JSON is named here.
    """
    choices = (response or {}).get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    if choice.get("structured_failure"):
        return str(choice["structured_failure"])
    message = choice.get("message") or {}
    if requested_schema(request.get("response_format")) is None or message.get("tool_calls"):
        return None
    failure = failure_of(message.get("content") or "", choice.get("finish_reason"))
    return failure[0].value if failure else None


class ChatModelBackend:
    """Serves any LangChain chat model (the embedded local model) as an OpenAI endpoint.

    Requests that carry ``tools`` go through the model's ``bind_tools`` (replies held to the tools' schemas, or
    fenced actions for a text-only model), parsed back into tool calls, so agents get OpenAI tool calls from a
    model without a tool-call parser; a ``response_format`` is passed on, and the backbone honours it.
    ``health`` is the watchdog of the server behind the model, when agentevo supervises one.
    """

    def __init__(
        self, chat_model: BaseChatModel, model: str, *, health: BackboneHealth | None = None
    ) -> None:
        self.chat_model = chat_model
        self.model = model
        self.health = health

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            messages = convert_to_messages(body["messages"])
        except (ValueError, TypeError, KeyError) as exc:
            raise BackboneError(
                400, f"messages are not valid chat messages: {exc}", Fault.invalid_request
            ) from None
        chat_model = self._chat_model_for(body.get("model"))
        tools, choice = body.get("tools"), body.get("tool_choice")
        runnable = chat_model.bind_tools(tools, tool_choice=choice) if tools else chat_model
        options: dict[str, Any] = {}
        if body.get("response_format"):
            options["response_format"] = body["response_format"]
        options.update({k: body[k] for k in SAMPLING if body.get(k) is not None})
        stop = body.get("stop")
        if stop:
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit:  # the model's own max_tokens (llm.max_tokens) is also the most a request may ask for
            ceiling = getattr(chat_model, "max_tokens", None)
            options["max_tokens"] = min(int(limit), ceiling) if ceiling else int(limit)
        try:
            reply = await in_daemon_thread(runnable.invoke, messages, **options)
        except openai.LengthFinishReasonError as exc:
            # ChatOpenAI raises a schema-held answer cut off by max_tokens: the caller gets it with finish_reason
            # length (its failure named truncated, repaired once), not a 502.
            reply = cut_off_reply(exc)
        except Exception as exc:  # noqa: BLE001 - the model's failure is reported, the gateway stays up
            raise _model_fault(exc) from None
        return self._response(reply)

    def serve(self, name: str) -> None:
        """Answer requests that name no model as ``name`` (the base or a loaded adapter): how the active
        adapter of ``agentevo.train`` is served. Requests that name a model still get that one."""
        select = getattr(self.chat_model, "for_model", None)
        if select is None:
            raise BackboneError(
                404, f"this backbone serves no adapters (asked for {name!r})", Fault.model_not_found
            )
        try:
            chosen = select(name)
        except LookupError as exc:
            raise BackboneError(404, str(exc), Fault.model_not_found) from None
        self.chat_model, self.model = chosen, name

    def _chat_model_for(self, name: str | None) -> BaseChatModel:
        """The request's ``model`` picks a LoRA adapter on backbones that serve several (they have ``for_model``)."""
        select = getattr(self.chat_model, "for_model", None)
        if not name or name == self.model or select is None:
            return self.chat_model
        try:
            return select(name)
        except LookupError as exc:
            raise BackboneError(404, str(exc), Fault.model_not_found) from None

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
        choice = {"index": 0, "message": message, "finish_reason": finish}
        if reply.response_metadata.get(FAILURE_KEY):  # an agentevo field: OpenAI clients ignore it
            choice["structured_failure"] = reply.response_metadata[FAILURE_KEY]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
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
