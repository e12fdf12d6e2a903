"""Finds and removes agentevo containers that nobody owns any more."""

from __future__ import annotations

import socket
import time

import docker

from agentevo import procs
from agentevo.sandbox.docker_host import LABEL_EXPIRES, LABEL_OWNER, docker_client


def owner_alive(owner: str) -> bool:
    """Whether the process named by an owner label still runs (unknown hosts count as alive)."""
    try:
        host, pid, started = owner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    return procs.start_time(int(pid)) == started


def orphaned(labels: dict[str, str], now: float) -> bool:
    """A container is orphaned when its owner is gone or its lifetime is over."""
    expired = float(labels.get(LABEL_EXPIRES, "0") or 0) < now
    return expired or not owner_alive(labels.get(LABEL_OWNER, ""))


def reap(client: docker.DockerClient | None = None, *, everything: bool = False) -> list[str]:
    """Remove orphaned agentevo containers (or all of them) and return their names."""
    client = client or docker_client()
    now = time.time()
    removed = []
    # Only sandboxes carry an owner; image-build containers inherit the image's labels but not this one.
    # The low-level list returns labels without inspecting each container, so one vanishing meanwhile is harmless.
    for entry in client.api.containers(all=True, filters={"label": LABEL_OWNER}):
        name = entry["Names"][0].lstrip("/")
        if everything or orphaned(entry["Labels"], now):
            try:
                client.api.remove_container(entry["Id"], force=True)
                removed.append(name)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: removal already in progress
                    raise
    return removed
