"""Which provider runs a sandbox: ``sandbox.provider`` of the config, looked up here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from agentevo.sandbox.config import ProviderName, SandboxConfig
from agentevo.sandbox.docker_provider import DockerProvider
from agentevo.sandbox.provider import RunningSandbox, SandboxProvider

PROVIDERS: dict[ProviderName, Callable[[], SandboxProvider]] = {"docker": DockerProvider}


def provider_for(config: SandboxConfig) -> SandboxProvider:
    """The provider that ``config`` names."""
    return PROVIDERS[config.provider]()


def start_sandbox(
    config: SandboxConfig | None = None,
    *,
    run_id: str | None = None,
    env: dict[str, str] | None = None,
    gateway_socket: Path | None = None,
    binds: Mapping[Path, str] | None = None,
) -> RunningSandbox:
    """A started sandbox on the provider ``config`` names (see ``SandboxProvider.start``)."""
    config = config or SandboxConfig()
    return provider_for(config).start(
        config, run_id=run_id, env=env, gateway_socket=gateway_socket, binds=binds
    )
