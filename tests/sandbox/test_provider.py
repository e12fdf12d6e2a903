"""The provider seam: the config picks the provider, engine failures are the provider's own errors, and the
evaluator, episodes and status see nothing but those (docs/sandbox.md)."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import docker as docker_sdk
import pytest
from pydantic import ValidationError

from agentevo.agents import run_isolated, seed_agent_dir
from agentevo.agents.episode import SandboxExtras
from agentevo.contract import StopReason
from agentevo.evaluate.evaluator import Evaluator
from agentevo.evaluate.results import ErrorKind
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.report.status import sandboxes
from agentevo.sandbox import SandboxConfig, SandboxUnavailable, provider_for, start_sandbox
from agentevo.sandbox.docker_host import docker_client
from agentevo.sandbox.docker_provider import DockerProvider
from tests.agents.scripts import ADD_TASK, SOLVE_ADD

ROOT = Path(__file__).resolve().parents[2]
MISSING_BIND = {Path("/nonexistent/agentevo/browser.sock"): "/run/agentevo/browser.sock"}
REFUSED = SandboxConfig(cpus=100_000)  # more CPUs than any engine has: it refuses to create the container


def test_the_config_names_the_provider():
    assert isinstance(provider_for(SandboxConfig()), DockerProvider)
    with pytest.raises(ValidationError, match="docker"):
        SandboxConfig(provider="kubernetes")


def test_a_sandbox_is_started_listed_and_gone(sandbox_image):
    provider = provider_for(SandboxConfig())
    assert provider.healthy()
    with start_sandbox(run_id="run-provider") as sb:
        assert sb.exec("echo $((6 * 7))").output.strip() == "42"
        assert provider.running("run-provider") == [sb.name]
    deadline = time.monotonic() + 15
    while provider.running("run-provider") and time.monotonic() < deadline:  # auto-remove may still run
        time.sleep(0.2)
    assert provider.running("run-provider") == []


def test_an_engine_refusal_is_the_providers_error(sandbox_image):
    with pytest.raises(
        SandboxUnavailable, match="failed to start a sandbox.*bind source path does not exist"
    ):
        start_sandbox(binds=MISSING_BIND)
    with pytest.raises(SandboxUnavailable, match="Range of CPUs") as caught:
        start_sandbox(REFUSED)
    assert not isinstance(caught.value, docker_sdk.errors.DockerException)


def test_the_evaluator_scores_a_refused_sandbox_as_a_sandbox_error(sandbox_image):
    result = Evaluator(REFUSED).evaluate_solution(ADD_TASK, "def add(a, b):\n    return a + b\n")
    assert result.error_kind is ErrorKind.sandbox_error and not result.passed
    assert "no evaluation sandbox: the Docker engine failed to start a sandbox" in result.feedback


def test_an_episode_whose_sandbox_is_refused_is_a_machine_fault(tmp_path, sandbox_image):
    backend = ChatModelBackend(ScriptedChatModel(replies=SOLVE_ADD), "scripted")
    with Gateway(backend, run_dir=tmp_path, run_id="provider") as gateway:
        outcome = run_isolated(ADD_TASK, seed_agent_dir(), gateway, extras=SandboxExtras(binds=MISSING_BIND))
    assert outcome.stop_reason is StopReason.docker_error and outcome.calls == 0
    assert "SandboxUnavailable: the Docker engine failed to start a sandbox" in (outcome.error or "")


def test_status_asks_the_provider_and_says_unknown_when_it_does_not_answer(
    monkeypatch, tmp_path, sandbox_image
):
    with start_sandbox(run_id="run-status") as sb:
        assert sandboxes("run-status", SandboxConfig()) == [sb.name]
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    docker_client.cache_clear()  # the shared client was made for the real engine
    try:
        assert sandboxes("run-status", SandboxConfig()) is None
    finally:
        docker_client.cache_clear()


def _docker_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    return [name for name in names if name == "docker" or name.startswith("docker.")]


def test_only_the_sandbox_package_imports_docker():
    package = ROOT / "agentevo"
    outside = [p for p in package.rglob("*.py") if p.relative_to(package).parts[0] != "sandbox"]
    offenders = {str(p.relative_to(ROOT)): _docker_imports(p) for p in outside if _docker_imports(p)}
    assert not offenders, f"only agentevo/sandbox/ may import docker; use its provider instead: {offenders}"
