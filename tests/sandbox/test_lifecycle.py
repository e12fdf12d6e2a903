"""Containers never outlive their owner: close, owner death, expiry, garbage collection, the pool."""

from __future__ import annotations

import subprocess
import sys
import time

import docker as docker_sdk
import pytest

from agentevo.sandbox import Sandbox, SandboxConfig, SandboxPool, SandboxUnavailable, reap
from agentevo.sandbox.docker_host import (
    LABEL,
    LABEL_EXPIRES,
    LABEL_OWNER,
    LABEL_RUN,
    container_kwargs,
    owner_id,
)


def gone(docker, name: str, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            docker.containers.get(name)
        except docker_sdk.errors.NotFound:
            return True
        time.sleep(0.2)
    return False


def test_labels_and_close_removes(docker, sandbox_image):
    sb = Sandbox.start(run_id="run-labels")
    labels = docker.containers.get(sb.name).labels
    assert labels[LABEL] == "1" and labels[LABEL_RUN] == "run-labels" and labels[LABEL_OWNER] == owner_id()
    assert float(labels[LABEL_EXPIRES]) > time.time()
    sb.close()
    sb.close()  # idempotent
    assert gone(docker, sb.name, within=2)


def test_context_manager_removes_on_error(docker, sandbox_image):
    with pytest.raises(RuntimeError), Sandbox.start() as sb:
        name = sb.name
        raise RuntimeError("boom")
    assert gone(docker, name, within=2)


def test_a_gone_gateway_socket_is_refused_not_created(docker, sandbox_image, tmp_path):
    """A gateway that stopped while an episode was starting: Docker must not make a directory in its place."""
    socket_path = tmp_path / "gateway.sock"
    with pytest.raises(SandboxUnavailable, match="does not exist"):
        Sandbox.start(gateway_socket=socket_path)
    assert not socket_path.exists()
    assert not docker.containers.list(
        all=True, filters={"label": f"{LABEL_OWNER}={owner_id()}", "status": "created"}
    )


def test_owner_killed_with_sigkill_leaves_nothing(docker, sandbox_image):
    script = "from agentevo import Sandbox; import time; sb = Sandbox.start(); print(sb.name, flush=True); time.sleep(120)"
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        name = child.stdout.readline().strip()
        assert docker.containers.get(name).status == "running"
    finally:
        child.kill()
        child.wait(10)
    assert gone(docker, name), "the supervisor should see end of input and the container auto-remove"


def _orphan(docker, owner: str, expires: float):
    kwargs = container_kwargs(SandboxConfig(), docker.images.get(Sandbox_image_tag()).tags[0], "run-orphan")
    kwargs["labels"].update({LABEL_OWNER: owner, LABEL_EXPIRES: str(int(expires))})
    kwargs.update(command=["sleep", "120"], stdin_open=False)
    return docker.containers.run(**kwargs)


def Sandbox_image_tag() -> str:
    from agentevo.sandbox import images

    return images.image_tag("python")


def test_reaper_removes_dead_owners_and_expired_only(docker, sandbox_image):
    dead = _orphan(docker, f"{owner_id().split(':')[0]}:999999999:1", time.time() + 600)
    expired = _orphan(docker, owner_id(), time.time() - 1)
    other_host = _orphan(docker, "another-host:1:1", time.time() + 600)
    with Sandbox.start() as live:
        removed = reap(docker)
        assert dead.name in removed and expired.name in removed
        assert live.name not in removed and other_host.name not in removed
        assert live.exec("echo ok").output.strip() == "ok"
    assert other_host.name in reap(docker, everything=True)


def test_ttl_ends_a_forgotten_sandbox(docker, sandbox_image):
    sb = Sandbox.start(SandboxConfig(ttl_seconds=10))
    try:
        assert gone(docker, sb.name, within=25)
        deadline = time.monotonic() + 5
        while sb.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not sb.alive
    finally:
        sb.close()


def test_pool_hands_out_warm_sandboxes_once(docker, sandbox_image):
    with SandboxPool(size=2) as pool:
        assert pool.wait_ready(60)
        before = time.time()
        first = pool.acquire()
        assert first.started_at < before  # it was started ahead of the request
        first.exec("echo secret > /workspace/left-behind")
        first.close()
        assert pool.wait_ready(60)
        second = pool.acquire()
        with second:
            assert second.name != first.name
            assert second.exec("ls /workspace").output.strip() == ""
        idle = [c.name for c in docker.containers.list(filters={"label": f"{LABEL_RUN}={pool.run_id}"})]
    for name in idle:
        assert gone(docker, name, within=5)
