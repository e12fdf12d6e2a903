"""Starting a sandbox that is given Unix-socket paths besides the gateway's: the web episode's two containers.

The browser's container gets the host folder that holds the browser server's sockets; the agent's
container gets exactly one of them, the agent socket. Both are hardened like every sandbox
(``container_kwargs``); only these named paths are added.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agentevo.sandbox import Sandbox, SandboxConfig
from agentevo.sandbox.channel import Channel
from agentevo.sandbox.docker_host import container_kwargs, docker_client
from agentevo.sandbox.images import resolve_image
from agentevo.sandbox.sandbox import START_TIMEOUT_SECONDS


def start_with_binds(
    config: SandboxConfig,
    *,
    run_id: str,
    binds: Mapping[Path, str],
    env: dict[str, str] | None = None,
    gateway_socket: Path | None = None,
) -> Sandbox:
    """``Sandbox.start`` plus ``binds`` (host path -> path in the container); removed again if anything fails."""
    client = docker_client()
    kwargs = container_kwargs(config, resolve_image(config.image, client), run_id, gateway_socket)
    kwargs.pop("detach")
    kwargs["volumes"] = {
        **kwargs["volumes"],
        **{str(host): {"bind": inside, "mode": "rw"} for host, inside in binds.items()},
    }
    container = client.containers.create(**kwargs)
    try:
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        container.start()
        sandbox = Sandbox(
            container, Channel(getattr(sock, "_sock", sock), container.name), config, run_id, env
        )
        sandbox._request({"op": "ping"}, timeout=START_TIMEOUT_SECONDS)
    except BaseException:
        container.remove(force=True)
        raise
    return sandbox
