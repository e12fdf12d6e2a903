"""The host's own calls through a gateway: an OpenAI client over the gateway's Unix socket, with an episode token.

Host-side callers (the evolution loop's diagnoses and reflections, memory's lesson distillation) use this one;
agents bring their own client inside their package, so the host never imports an agent's code. Going through the
gateway rather than a chat model of their own means every call is recorded in ``llm_calls.jsonl`` (a run's token
budget reads it) and may go to another backbone than the task episodes' (``evolve.mutator``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import openai

from agentevo import contract
from agentevo.gateway.budget import Budget
from agentevo.gateway.server import Gateway


def gateway_client(socket_path: str | Path, token: str, *, timeout: float) -> openai.OpenAI:
    """A client whose every call is metered, recorded and budgeted by the gateway as the episode ``token``."""
    http = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), timeout=timeout)
    return openai.OpenAI(base_url=contract.GATEWAY_BASE_URL, api_key=token, http_client=http, max_retries=0)


class HostLLMError(RuntimeError):
    """A host-side model call failed or was refused; what it served (an expansion, a reflection) is abandoned."""


class HostLLM:
    """Ask the gateway's backbone one question; each call is its own one-call episode, recorded under the task id
    ``<scope>/<purpose>`` (``evolve/diagnose``, ``memory/distil``) and tagged with who asked (``agent_id``)."""

    def __init__(self, gateway: Gateway, *, scope: str, timeout: float, max_tokens: int = 768) -> None:
        self.gateway, self.scope, self.timeout, self.max_tokens = gateway, scope, timeout, max_tokens

    def ask(self, system: str, user: str, *, agent_id: str, purpose: str) -> str:
        access = self.gateway.open_episode(
            agent_id=agent_id, task_id=f"{self.scope}/{purpose}", episode_id=f"{purpose}-{uuid.uuid4().hex[:8]}",
            budget=Budget(max_calls=1, max_seconds=self.timeout),
        )  # fmt: skip
        try:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            with gateway_client(self.gateway.socket_path, access.token, timeout=self.timeout) as client:
                reply = client.chat.completions.create(
                    model="", messages=messages, max_tokens=self.max_tokens
                )
        except Exception as exc:  # any failure of the call abandons what it was for, nothing more
            raise HostLLMError(f"the model failed ({purpose}): {exc.__class__.__name__}: {exc}") from exc
        finally:
            self.gateway.close_episode(access)
        return reply.choices[0].message.content or ""
