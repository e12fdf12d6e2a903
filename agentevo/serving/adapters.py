"""The registry's active adapter, served: loaded into the backbone's server and answered as the default model.

A backbone opened with :func:`agentevo.serving.backbone.open_backend` calls :func:`serve_active`, so every run that
starts after a promotion is served by the promoted adapter (its calls are recorded under that name), and after
a rollback by what was active before.
"""

from __future__ import annotations

from pathlib import Path

from agentevo.config import AgentevoConfig
from agentevo.gateway.backends import Backend, ChatModelBackend, supervised_server
from agentevo.llm.backbone import BackboneSetupError
from agentevo.llm.supervised import AdapterServer
from agentevo.train.registry import AdapterRegistry, RegistryError, base_fingerprint

ACTIVE = "the active adapter"


def registry_of(config: AgentevoConfig) -> AdapterRegistry:
    """The registry an ``AgentevoConfig`` names (``train.adapters_dir``, ``train.name``)."""
    return AdapterRegistry(config.train.adapters_dir, config.train.name)


def served_model_dir(config: AgentevoConfig) -> Path | None:
    """The weights folder the configured server serves, when agentevo knows it (for the base-model check)."""
    from agentevo.llm.model_store import embedded_model_dir

    llm = config.llm
    if llm.backbone == "vllm" and llm.vllm.model:
        return Path(llm.vllm.model) if Path(llm.vllm.model).is_dir() else None
    if llm.backbone == "llamacpp" and llm.llamacpp.model is not None:
        return None  # a GGUF of the user's: its base is not known here
    folder = embedded_model_dir(config.cache_dir)
    return folder if folder.is_dir() else None


def serve_active(config: AgentevoConfig, backend: Backend) -> str | None:
    """Load the active adapter (if any) into the backend's server and make it the default; returns its name.

    Raises ``BackboneSetupError`` (a one-line CLI error) when the active adapter was trained on another base
    model than the one served, or the registry's ``active.json`` is unreadable.
    """
    try:
        name = registry_of(config).active()
    except RegistryError as exc:
        raise _unservable(ACTIVE, exc) from None
    server = supervised_server(backend)
    if name is None or server is None or not isinstance(backend, ChatModelBackend):
        return None
    return _load(config, backend, server, name, ACTIVE)


def serve_adapter(config: AgentevoConfig, backend: Backend, name: str) -> str:
    """Load the registry's adapter ``name`` into the backend's server and make it the default (a comparison's
    arm names one); returns the name. ``BackboneSetupError`` when it cannot be served there."""
    server = supervised_server(backend)
    if server is None or not isinstance(backend, ChatModelBackend):
        raise BackboneSetupError(
            f"adapter {name!r} needs a backbone agentevo serves (llm.backbone llamacpp or vllm); an endpoint of "
            "your own serves its adapters under model names of its own (set the model instead)"
        )
    return _load(config, backend, server, name, f"adapter {name!r}")


def _load(
    config: AgentevoConfig, backend: ChatModelBackend, server: AdapterServer, name: str, what: str
) -> str:
    """Check ``name`` was trained on the served base weights, load it into ``server`` (the backend's) and serve
    it by default."""
    registry = registry_of(config)
    try:
        model_dir = served_model_dir(config)
        if model_dir is not None:
            registry.check_base(name, base_fingerprint(model_dir))
    except RegistryError as exc:
        raise _unservable(what, exc) from None
    server.load_adapter(name, registry.path(name))
    backend.serve(name)
    return name


def _unservable(what: str, exc: RegistryError) -> Exception:
    fix = (
        "`agentevo adapters rollback` serves the previous one"
        if what == ACTIVE
        else "`agentevo adapters list`"
    )
    return BackboneSetupError(f"{what} cannot be served: {exc} ({fix})")
