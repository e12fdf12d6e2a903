"""Without a Docker engine the suite says so in one line per test and ends cleanly (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NO_DOCKER

ROOT = Path(__file__).resolve().parents[2]
NEEDS_DOCKER = """
from agentevo.sandbox import Sandbox


def test_starts_a_sandbox():
    with Sandbox.start() as sb:
        sb.exec("true")


def test_takes_the_sandbox_fixture(sandbox):
    sandbox.exec("true")


def test_needs_no_docker():
    assert 1 + 1 == 2
"""


@pytest.mark.slow
def test_without_an_engine_docker_tests_fail_in_one_line_and_the_run_ends_cleanly(tmp_path: Path) -> None:
    (tmp_path / "test_needs_docker.py").write_text(NEEDS_DOCKER)
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    assert "1 failed, 1 passed, 1 error" in out, out
    assert out.count(NO_DOCKER) == 2, out  # once at the start, once at the end
    for name in (
        "test_starts_a_sandbox",
        "test_takes_the_sandbox_fixture",
    ):  # the body fails, the fixture errs
        assert f"::{name} needs the machine set up: no Docker engine answers" in out, out
        assert "run `make test` or `bash scripts/ensure-system.sh`" in out, out
