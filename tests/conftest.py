"""Shared fixtures. Tests use the real Docker engine and the real sandbox image: `make test` provides both."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agentevo.sandbox import Sandbox, SandboxConfig, images
from agentevo.sandbox.docker_host import LABEL_OWNER, docker_client, owner_id

# HumanEval and MBPP live beside the checkout (../shared/benchdata), never in it; a user may point elsewhere.
BENCHDATA = Path(
    os.environ.get("AGENTEVO_BENCHDATA", Path(__file__).resolve().parents[1].parent / "shared" / "benchdata")
)

# Tight limits so a hostile command hits its wall quickly and the machine stays healthy.
HOSTILE = SandboxConfig(
    memory="256m", pids=64, workspace_size="64m", tmp_size="32m", file_size_limit="48m", exec_timeout=20
)


@pytest.fixture(scope="session")
def docker():
    return docker_client()


@pytest.fixture(scope="session")
def sandbox_image(docker) -> str:
    return images.ensure_image("python", client=docker)


@pytest.fixture
def sandbox(sandbox_image):
    with Sandbox.start() as sb:
        yield sb


@pytest.fixture
def hostile(sandbox_image):
    with Sandbox.start(HOSTILE) as sb:
        yield sb


def _ours(client) -> list[str]:
    entries = client.api.containers(all=True, filters={"label": f"{LABEL_OWNER}={owner_id()}"})
    return [entry["Names"][0].lstrip("/") for entry in entries]


def pytest_sessionfinish(session, exitstatus):
    # The suite checks its own hygiene: no container it created may outlive it.
    client = docker_client()
    deadline = time.monotonic() + 10
    leftovers = _ours(client)
    while leftovers and time.monotonic() < deadline:  # auto-remove may still be finishing
        time.sleep(0.2)
        leftovers = _ours(client)
    if leftovers:
        names = ", ".join(leftovers)
        session.config.get_terminal_writer().line(f"LEAK: agentevo containers left behind: {names}", red=True)
        session.exitstatus = 1
    skipped = session.config.pluginmanager.get_plugin("terminalreporter").stats.get("skipped", [])
    if os.environ.get("CI") and skipped:
        session.config.get_terminal_writer().line(
            f"CI forbids skipped tests; {len(skipped)} skipped", red=True
        )
        session.exitstatus = 1
