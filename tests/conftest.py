"""Shared fixtures. Tests use the real Docker engine and the real sandbox image: `make test` provides both.

Without an engine the tests that need one fail, each with one line that says what to run, and the run
says so once at its start and once at its end; nothing is skipped and nothing ends in a traceback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agentevo.sandbox import Sandbox, SandboxConfig, images
from agentevo.sandbox.docker_host import LABEL_OWNER, docker_client, owner_id, wait_for_docker
from agentevo.sandbox.errors import DockerUnavailable, ImageMissing

# What a test needs from the machine rather than from the code: failing for it is one line, not a traceback.
MACHINE_ERRORS = (DockerUnavailable, ImageMissing)
_DOCKER_UP = pytest.StashKey[bool]()  # whether an engine answered when the session started
NO_DOCKER = "no Docker engine answers: the tests that need one fail; run `make test` or `bash scripts/ensure-system.sh`"

# HumanEval and MBPP live beside the checkout (../shared/benchdata), never in it; a user may point elsewhere.
BENCHDATA = Path(
    os.environ.get("AGENTEVO_BENCHDATA", Path(__file__).resolve().parents[1].parent / "shared" / "benchdata")
)

# Markers (docs/testing.md): a test is marked `docker` or `model` when its fixtures (their whole closure, so
# anything built on them counts too) include one of these; tests that reach Docker or a model some other way (a
# CLI child process, a server started in the test) carry the mark themselves, and so do pure tests that take
# seconds (`slow`). Every test under tests/memory is `slow`: each one runs Chroma and the embedding model.
# `pytest -m "not docker and not model and not slow"` is then the quick run.
DOCKER_FIXTURES = frozenset({"docker", "sandbox_image", "web_image", "sandbox", "hostile"})
MODEL_FIXTURES = frozenset({"model_dir", "vllm_server", "llamacpp_server", "trained_adapter"})
SLOW_DIRS = frozenset({Path(__file__).parent / "memory"})
MARKERS = {
    "docker": "needs the Docker engine and the sandbox images",
    "model": "runs a real model (the embedded model in process, llama.cpp, vLLM) or trains an adapter",
    "slow": "pure (no Docker, no model) yet too slow for the quick run",
}

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


@pytest.fixture(scope="session")
def web_image(docker) -> str:
    return images.ensure_image("web", client=docker)


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


def _machine_error(exc: BaseException | None) -> BaseException | None:
    """``exc``, or the error it was raised from, when it is one of ``MACHINE_ERRORS``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MACHINE_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def pytest_configure(config):
    """The markers are registered here, not in pyproject.toml, so that they hold wherever this file is loaded."""
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")


def pytest_collection_modifyitems(config, items):
    """The fixture and folder rules above, applied to every collected test."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & DOCKER_FIXTURES:
            item.add_marker(pytest.mark.docker)
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)
        if SLOW_DIRS & set(item.path.parents):
            item.add_marker(pytest.mark.slow)


def pytest_sessionstart(session):
    session.config.stash[_DOCKER_UP] = wait_for_docker(0)
    if not session.config.stash[_DOCKER_UP]:
        session.config.get_terminal_writer().line(NO_DOCKER, red=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    error = _machine_error(call.excinfo.value if call.excinfo else None)
    if error is not None and report.failed:
        report.longrepr = f"{item.nodeid} needs the machine set up: {error}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.stash.get(_DOCKER_UP, True):
        terminalreporter.write_line(NO_DOCKER, red=True)


def pytest_sessionfinish(session, exitstatus):
    if not session.config.stash.get(_DOCKER_UP, True) or not wait_for_docker(0):
        return  # no engine, so no container of ours can be left behind
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
