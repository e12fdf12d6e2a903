"""Promotion and rollback: a new adapter replaces the active one only when it measurably does better.

``promote`` asks a judge (:mod:`agentevo.compare.promotion`: agent episodes through ``agentevo.compare`` on a fresh
validation sample, or a scorer's per-task outcomes) for paired evidence of the candidate against the active
adapter or the base, and switches the active name only when :func:`~agentevo.train.judge.decide` says so: a gain
above the margin, a paired test's p below ``train.promote_p``, enough tasks. Names are never reused (vLLM caches
prefix KV by adapter name). Either way the decision and its evidence are recorded in the registry's
``active.json``; a running server keeps the winner loaded and unloads the loser, and a gateway backend given to
either call serves the active name at once. ``rollback`` restores the previous active name in one step.
"""

from __future__ import annotations

from typing import Protocol

from agentevo.llm.supervised import AdapterServer
from agentevo.train.config import TrainConfig
from agentevo.train.judge import Judge, decide
from agentevo.train.registry import AdapterRegistry, Decision, RegistryError


class ServesByName(Protocol):
    """The gateway's backend as promotion sees it (``agentevo.gateway.backends.ChatModelBackend``; train never
    imports the gateway): requests that name no model are answered as the name it is given."""

    def serve(self, name: str) -> None: ...


def _serve(gateway_backend: ServesByName | None, name: str) -> None:
    if gateway_backend is not None:
        gateway_backend.serve(name)


def _settle(
    registry: AdapterRegistry,
    server: AdapterServer,
    backend: ServesByName | None,
    keep: str | None,
    drop: str | None,
) -> None:
    """The server after a decision: ``keep`` (None: the base) loaded and served, ``drop`` unloaded."""
    if keep is not None:
        server.load_adapter(keep, registry.path(keep))
    _serve(backend, keep or server.served_name)
    if drop is not None and drop in server.adapters:
        server.unload_adapter(drop)


def promote(
    registry: AdapterRegistry,
    candidate: str,
    judge: Judge,
    *,
    base_sha256: str,
    config: TrainConfig,
    server: AdapterServer | None = None,
    backend: ServesByName | None = None,
) -> Decision:
    """Judge ``candidate`` against the active adapter (or the base) and make it active only if the rule says so.

    ``server`` is the running vLLM or llama.cpp server, if any (the winner stays loaded there); ``backend``
    (optional) is the gateway's backend, which then serves the active name. Raises :class:`RegistryError` for an
    unknown adapter or one trained on another base model, before anything is judged.
    """
    registry.check_base(candidate, base_sha256)
    current = registry.active()
    if candidate == current:
        raise RegistryError(f"{candidate} is already the active adapter")
    evidence = judge(current, candidate)
    better, reason = decide(evidence, config)
    decision = Decision(
        action="promote" if better else "keep",
        candidate=candidate,
        previous=current,
        active=current,
        reason=reason,
        scores=evidence.model_dump(mode="json"),
    )
    registry.decide(decision)
    if server is not None:
        _settle(registry, server, backend, *((candidate, current) if better else (current, candidate)))
    return decision


def rollback(
    registry: AdapterRegistry, server: AdapterServer | None = None, *, backend: ServesByName | None = None
) -> Decision:
    """Make the previously active adapter (or the base) active again; the server and gateway follow when given."""
    dropped = registry.active()
    if dropped is None and not registry.state().replaced:
        raise RegistryError("nothing to roll back: the base model is served and no adapter was ever promoted")
    decision = registry.decide(
        Decision(
            action="rollback", candidate=None, previous=dropped, active=None, reason="rollback requested"
        )
    ).decisions[-1]
    restored = decision.active
    if server is not None:
        if restored is not None:
            server.load_adapter(restored, registry.path(restored))
        _serve(backend, restored or server.served_name)
        if dropped is not None and dropped in server.adapters:
            server.unload_adapter(dropped)
    return decision
