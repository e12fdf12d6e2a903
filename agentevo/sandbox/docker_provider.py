"""The Docker provider: sandboxes as hardened containers of the Docker engine that ``DOCKER_HOST`` names (the
local one by default). The hardening lives in ``docker_host.container_kwargs``, the driving in ``sandbox.py``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agentevo.sandbox import reaper
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.docker_host import LABEL_RUN, docker_client, engine_errors, wait_for_docker
from agentevo.sandbox.sandbox import Sandbox


class DockerProvider:
    """``SandboxProvider`` on the Docker engine; every engine failure is raised as ``SandboxUnavailable``."""

    def start(
        self,
        config: SandboxConfig,
        *,
        run_id: str | None = None,
        env: dict[str, str] | None = None,
        gateway_socket: Path | None = None,
        binds: Mapping[Path, str] | None = None,
    ) -> Sandbox:
        return Sandbox.start(config, run_id=run_id, env=env, gateway_socket=gateway_socket, binds=binds)

    def healthy(self, timeout: float = 0.0) -> bool:
        return wait_for_docker(timeout)

    def running(self, run_id: str) -> list[str]:
        with engine_errors(f"list the sandboxes of run {run_id}"):
            containers = docker_client().containers.list(filters={"label": f"{LABEL_RUN}={run_id}"})
            return [container.name for container in containers]

    def reap(self, *, everything: bool = False) -> list[str]:
        with engine_errors("remove leftover sandboxes"):
            return reaper.reap(everything=everything)
