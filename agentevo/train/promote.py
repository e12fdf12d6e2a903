"""Promotion and rollback: a new adapter replaces the active one only when it measurably does better.

``promote`` loads the candidate into the running server under its own versioned name (never reusing a name:
vLLM caches prefix KV by adapter name), scores it and the active model on the same held-out set, and switches
the active name only if the candidate beats it by more than the margin; the loser is unloaded. Either way the
decision and both scores are recorded in the registry's ``active.json``. ``rollback`` restores the previous
active name in one step. A gateway given to either call serves the new active name at once.
"""

from __future__ import annotations

from typing import Any

from agentevo.train.registry import AdapterRegistry, Decision, RegistryError
from agentevo.train.scoring import Scorer


def _serve(gateway_backend: Any | None, name: str) -> None:
    if gateway_backend is not None:
        gateway_backend.serve(name)


def promote(
    registry: AdapterRegistry,
    server: Any,
    candidate: str,
    scorer: Scorer,
    *,
    base_sha256: str,
    margin: float = 0.0,
    backend: Any | None = None,
) -> Decision:
    """Score ``candidate`` against the active adapter (or the base) and switch only if it is better by ``margin``.

    ``server`` is the running vLLM or llama.cpp server; ``backend`` (optional) is the gateway's backend, which
    then serves the active name. Raises :class:`RegistryError` for an unknown adapter or one trained on another
    base model, before anything is loaded.
    """
    registry.check_base(candidate, base_sha256)
    current = registry.active()
    if candidate == current:
        raise RegistryError(f"{candidate} is already the active adapter")
    if current is not None:
        server.load_adapter(current, registry.path(current))
    server.load_adapter(candidate, registry.path(candidate))
    incumbent = current or server.served_name
    new, old = scorer(candidate), scorer(incumbent)
    better = new.rate > old.rate + margin
    scores = {
        candidate: {"passed": new.passed, "total": new.total, "rate": new.rate},
        incumbent: {"passed": old.passed, "total": old.total, "rate": old.rate},
    }
    if better:
        reason = f"{candidate} passed {new.passed}/{new.total} vs {incumbent} {old.passed}/{old.total} (margin {margin})"
    else:
        reason = (
            f"kept {incumbent}: {candidate} passed {new.passed}/{new.total} vs {old.passed}/{old.total}, "
            f"not better by more than the margin {margin}"
        )
    decision = Decision(
        action="promote" if better else "keep", candidate=candidate, previous=current, active=current,
        reason=reason, scores=scores,
    )  # fmt: skip
    registry.decide(decision)
    if better:
        _serve(backend, candidate)
        if current is not None:
            server.unload_adapter(current)
    else:
        server.unload_adapter(candidate)
    return decision


def rollback(registry: AdapterRegistry, server: Any | None = None, *, backend: Any | None = None) -> Decision:
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
        if dropped is not None and dropped in getattr(server, "adapters", {}):
            server.unload_adapter(dropped)
    return decision
