"""Talking to the Docker engine: the client, the hardened container spec, and ownership labels."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.types import Mount, Ulimit

from agentevo import procs
from agentevo.contract import GATEWAY_SOCKET_IN_SANDBOX
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.errors import DockerUnavailable, SandboxUnavailable

LABEL = "agentevo"
LABEL_RUN = "agentevo.run"
LABEL_OWNER = "agentevo.owner"
LABEL_EXPIRES = "agentevo.expires"
SUPERVISOR = "/opt/agentevo/sandboxd.py"
DOCKER_POLL_S = 1.0
DOCKER_PING_TIMEOUT_S = 5.0


@functools.lru_cache(maxsize=1)
def docker_client() -> docker.DockerClient:
    """A shared Docker client; raises DockerUnavailable with the fix when no engine answers."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - every failure here means the same thing to the user
        raise DockerUnavailable(
            f"no Docker engine answers ({exc.__class__.__name__}); "
            "run `make test` or `bash scripts/ensure-system.sh` to install and start it"
        ) from None
    return client


@contextlib.contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """The Docker SDK's and its transport's failures, raised as ``SandboxUnavailable``: callers of the provider
    catch sandbox errors only, whatever the engine (or a socket that vanished mid-call) raised."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxUnavailable(
            f"the Docker engine failed to {doing}: {exc.__class__.__name__}: {exc}"
        ) from exc


def wait_for_docker(timeout: float) -> bool:
    """Whether a Docker engine answers within ``timeout`` seconds (after it failed a sandbox)."""
    deadline = time.monotonic() + timeout
    while not _docker_answers():
        if time.monotonic() >= deadline:
            return False
        time.sleep(DOCKER_POLL_S)
    return True


def _docker_answers() -> bool:
    """Asked on a new connection: a pooled one can still reach an engine that is shutting down, whose socket is
    already gone for everyone else (seen while dockerd restarts)."""
    try:
        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False
    finally:
        client.close()


@functools.lru_cache(maxsize=1)
def owner_id() -> str:
    """host:pid:starttime of this process, written on every container it creates."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{procs.start_time(pid)}"


def container_kwargs(
    config: SandboxConfig,
    image: str,
    run_id: str,
    gateway_socket: Path | None = None,
    binds: Mapping[Path, str] | None = None,
) -> dict[str, Any]:
    """Arguments for ``containers.create``: the hardened profile, shaped by ``config``.

    ``gateway_socket`` is the one host path a sandbox may usually see: the LLM gateway's Unix socket,
    mounted at ``GATEWAY_SOCKET_IN_SANDBOX``. ``binds`` (host path -> path inside) names any other, such as
    a web episode's browser socket. They are bind *mounts*, not ``volumes``: Docker refuses a source that is
    gone instead of creating a root-owned directory in its place (a gateway that stopped mid-start did that).
    """
    paths = {**({gateway_socket: GATEWAY_SOCKET_IN_SANDBOX} if gateway_socket else {}), **(binds or {})}
    mounts = [Mount(target=inside, source=str(host), type="bind") for host, inside in paths.items()]
    owner_tmpfs = f"uid={config.uid},gid={config.gid}"
    expires = int(time.time() + config.ttl_seconds)
    return dict(
        image=image,
        command=["python3", "-u", SUPERVISOR, "--ttl", str(config.ttl_seconds)],
        # docker-py sets StdinOnce with stdin_open: our exit closes the supervisor's input.
        stdin_open=True,
        tty=False,
        # The supervisor is PID 1 itself (it reaps orphans); see sandboxd.py for why not tini.
        init=False,
        auto_remove=True,
        detach=True,
        labels={LABEL: "1", LABEL_RUN: run_id, LABEL_OWNER: owner_id(), LABEL_EXPIRES: str(expires)},
        hostname="sandbox",
        user=config.user,
        working_dir="/workspace",
        environment={"HOME": "/workspace", "LANG": "C.UTF-8"},
        network_mode=config.network,
        read_only=config.read_only_root,
        tmpfs={
            "/workspace": f"rw,exec,nosuid,nodev,size={config.workspace_size},{owner_tmpfs},mode=0755",
            "/tmp": f"rw,nosuid,nodev,size={config.tmp_size},{owner_tmpfs},mode=0755",
        },
        cap_drop=["ALL"],
        cap_add=config.cap_add or None,
        security_opt=["no-new-privileges"] if config.no_new_privileges else [],
        pids_limit=config.pids,
        mem_limit=config.memory,
        memswap_limit=config.memory,
        nano_cpus=int(config.cpus * 1e9),
        ulimits=[
            Ulimit(name="fsize", soft=config.file_size_limit, hard=config.file_size_limit),
            Ulimit(name="nofile", soft=config.open_files, hard=config.open_files),
        ],
        log_config={"type": "none", "config": {}},
        mounts=mounts,
    )
