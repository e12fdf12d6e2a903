"""The host's own calls through a gateway: an OpenAI client over the gateway's Unix socket, with an episode token.

Host-side callers (the evolution loop's diagnoses and reflections, memory's lesson distillation) use this one;
agents bring their own client inside their package, so the host never imports an agent's code. Going through the
gateway rather than a chat model of their own means every call is recorded in ``llm_calls.jsonl`` (a run's token
budget reads it) and may go to another backbone than the task episodes' (``evolve.mutator``).
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import convert_to_openai_messages
from pydantic import BaseModel

from agentevo import contract
from agentevo.gateway.budget import Budget
from agentevo.gateway.server import Gateway
from agentevo.llm.structured import StructuredOutputError, ask_structured

T = TypeVar("T", bound=BaseModel)


def gateway_client(socket_path: str | Path, token: str, *, timeout: float) -> openai.OpenAI:
    """A client whose every call is metered, recorded and budgeted by the gateway as the episode ``token``."""
    http = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), timeout=timeout)
    return openai.OpenAI(
        base_url=contract.GATEWAY_BASE_URL,
        api_key=token,
        http_client=http,  # type: ignore[arg-type]  # openai types httpx2 but takes httpx clients too
        max_retries=0,
    )


class HostLLMError(RuntimeError):
    """A host-side model call failed or was refused; what it served (an expansion, a reflection) is abandoned."""


class HostLLM:
    """Ask the gateway's backbone one question; each call is its own one-call episode, recorded under the task id
    ``<scope>/<purpose>`` (``evolve/diagnose``, ``memory/distil``) and tagged with who asked (``agent_id``)."""

    def __init__(self, gateway: Gateway, *, scope: str, timeout: float, max_tokens: int = 768) -> None:
        self.gateway, self.scope, self.timeout, self.max_tokens = gateway, scope, timeout, max_tokens

    def ask(self, system: str, user: str, *, agent_id: str, purpose: str) -> str:
        messages = [SystemMessage(system), HumanMessage(user)]
        try:
            return str(self._invoke(messages, agent_id=agent_id, purpose=purpose).content)
        except Exception as exc:  # any failure of the call abandons what it was for, nothing more
            raise HostLLMError(f"the model failed ({purpose}): {exc.__class__.__name__}: {exc}") from exc

    def ask_structured(
        self,
        system: str,
        user: str,
        model: type[T],
        *,
        agent_id: str,
        purpose: str,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> T:
        """The answer as a ``model``, the backbone held to its JSON schema (or the tighter ``schema``) through
        ``response_format``, repaired once; sampled at ``temperature`` when given.

        Raises StructuredOutputError (its ``reason`` names why) when no valid answer came, HostLLMError when the
        call itself failed.
        """
        invoke = partial(self._invoke, agent_id=agent_id, purpose=purpose)
        messages = [SystemMessage(system), HumanMessage(user)]
        try:
            return ask_structured(
                invoke, messages, model, schema=schema, max_tokens=max_tokens, temperature=temperature
            )
        except StructuredOutputError:
            raise
        except Exception as exc:  # any failure of the call abandons what it was for, nothing more
            raise HostLLMError(f"the model failed ({purpose}): {exc.__class__.__name__}: {exc}") from exc

    def _invoke(
        self, messages: list[BaseMessage], *, agent_id: str, purpose: str, **options: Any
    ) -> AIMessage:
        """One call through the gateway as its own episode; the reply as a chat message with its finish reason."""
        access = self.gateway.open_episode(
            agent_id=agent_id,
            task_id=f"{self.scope}/{purpose}",
            episode_id=f"{purpose}-{uuid.uuid4().hex[:8]}",
            budget=Budget(max_calls=1, max_seconds=self.timeout),
        )
        options.setdefault("max_tokens", self.max_tokens)
        try:
            with gateway_client(self.gateway.socket_path, access.token, timeout=self.timeout) as client:
                wire = convert_to_openai_messages(messages)  # OpenAI's message dicts, typed as plain dicts
                reply = client.chat.completions.create(model="", messages=wire, **options)  # type: ignore[arg-type]
        finally:
            self.gateway.close_episode(access)
        choice = reply.choices[0]
        return AIMessage(
            content=choice.message.content or "", response_metadata={"finish_reason": choice.finish_reason}
        )
