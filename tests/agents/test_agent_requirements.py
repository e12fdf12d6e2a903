"""An agent folder that declares extra Python requirements runs on a derived image built offline for it (real
Docker, real wheel downloads from the configured package index, a scripted model: the check is about the
contract, not about solving)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from agentevo.agents.check import Failure, check_agent
from agentevo.agents.episode import agent_sandbox_config
from agentevo.sandbox import SandboxConfig
from agentevo.sandbox.derived import REPOSITORY
from agentevo.sandbox.docker_host import docker_client

BYO = Path(__file__).resolve().parents[2] / "examples" / "byo_agent"


def _agent_needing(tmp_path: Path, requirements: str) -> Path:
    folder = tmp_path / "agent"
    shutil.copytree(BYO, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "requirements.txt").write_text(requirements)
    package = folder / "__init__.py"
    # tabulate is not in the standard image: the agent imports only on its derived one.
    package.write_text(package.read_text() + "\nimport tabulate  # noqa: F401\n")
    return folder


def test_declared_requirements_build_a_derived_image_the_agent_runs_on(sandbox_image, tmp_path):
    folder = _agent_needing(tmp_path, "tabulate==0.10.0\n")
    report = check_agent(folder, cache_dir=tmp_path / "cache")
    assert report.passed, report.failures
    config = agent_sandbox_config(SandboxConfig(), folder, tmp_path / "cache")
    assert config.image.startswith(f"{REPOSITORY}:")
    started = time.monotonic()
    assert agent_sandbox_config(SandboxConfig(), folder, tmp_path / "cache") == config  # reused, not rebuilt
    assert time.monotonic() - started < 5
    assert agent_sandbox_config(config, folder, tmp_path / "cache") == config  # never derived twice
    (folder / "requirements.txt").unlink()
    assert agent_sandbox_config(SandboxConfig(), folder, tmp_path / "cache").image == SandboxConfig().image
    docker_client().images.remove(config.image, force=True)


def test_requirements_that_do_not_install_fail_the_check_with_the_pin(sandbox_image, tmp_path):
    folder = _agent_needing(tmp_path, "agentevo-no-such-package==9.9.9\n")
    report = check_agent(folder, cache_dir=tmp_path / "cache")
    assert [f.failure for f in report.failures] == [Failure.requirements]
    assert "agentevo-no-such-package" in report.failures[0].reason


def test_an_agent_without_its_image_packages_does_not_import(sandbox_image, tmp_path):
    folder = _agent_needing(tmp_path, "# nothing pinned\n")
    report = check_agent(folder, cache_dir=tmp_path / "cache")
    assert [f.failure for f in report.failures] == [Failure.does_not_import]
    assert "tabulate" in report.failures[0].reason
