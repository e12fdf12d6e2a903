"""The mutating backbone as the loop uses it: host-side LLM calls (diagnoses, reflections) through a gateway.

Going through the gateway rather than a chat model of our own means every call is recorded in
``llm_calls.jsonl`` (the run's token budget reads it) and the backbone may be a different one from the task
episodes' (``evolve.mutator``).
"""

from __future__ import annotations

import uuid

from agentevo.gateway import Budget, Gateway
from agentevo.gateway.client import gateway_client


class MutatorError(RuntimeError):
    """The mutating model failed or was refused; the expansion is abandoned (and redone by the scheduler)."""


class Mutator:
    """Ask the mutating backbone one question; each call is tagged with the parent and the purpose."""

    def __init__(self, gateway: Gateway, *, timeout: float, max_tokens: int = 768) -> None:
        self.gateway, self.timeout, self.max_tokens = gateway, timeout, max_tokens

    def ask(self, system: str, user: str, *, agent_id: str, purpose: str) -> str:
        access = self.gateway.open_episode(
            agent_id=agent_id, task_id=f"evolve/{purpose}", episode_id=f"{purpose}-{uuid.uuid4().hex[:8]}",
            budget=Budget(max_calls=1, max_seconds=self.timeout),
        )  # fmt: skip
        try:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            with gateway_client(self.gateway.socket_path, access.token, timeout=self.timeout) as client:
                reply = client.chat.completions.create(
                    model="", messages=messages, max_tokens=self.max_tokens
                )
        except Exception as exc:  # any failure of the call abandons this expansion only
            raise MutatorError(
                f"the mutating model failed ({purpose}): {exc.__class__.__name__}: {exc}"
            ) from exc
        finally:
            self.gateway.close_episode(access)
        return reply.choices[0].message.content or ""
