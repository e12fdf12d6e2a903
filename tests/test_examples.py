"""The examples are part of the public API's documentation: they must keep running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import UpstreamProcess, free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def upstream():
    """The scripted OpenAI-compatible upstream of the fault tests, in its own process on loopback."""
    process = UpstreamProcess(free_port()).start()
    yield process
    process.kill()


def test_sandbox_basics_example(sandbox_image):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "sandbox_basics.py")], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "hello from 3.11" in out
    assert "timed out: True exit code: 124" in out
    assert "9,998,000 bytes dropped" in out
    assert "copied in" in out
    assert "['job 0', 'job 1', 'job 2', 'job 3']" in out


def test_agent_sdk_example_with_the_embedded_model(sandbox_image):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_sdk.py")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("builtin/") and ": stop=" in line and "tokens=" in line and "score=" in line
    assert int(line.split("tokens=")[1].split()[0]) > 0


def _run_example(name: str, tmp_path: Path, *args: str, timeout: float = 600) -> str:
    env = {**os.environ, "AGENTEVO_ARCHIVES_DIR": str(tmp_path), "OPENAI_API_KEY": "test"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=timeout, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_web_task_example_with_a_scripted_endpoint(tmp_path, sandbox_image, web_image, upstream):
    # The scripted upstream (control flow, not skill) answers with tool calls the web seed cannot act on.
    out = _run_example("web_task.py", tmp_path, "--base-url", upstream.url, "--model", "upstream")
    assert "miniwob/click-button: passed=False score=0.00 tokens=" in out
    (run,) = [p for p in tmp_path.iterdir() if (p / "results.jsonl").is_file()]
    assert f"results: {run}" in out


@pytest.mark.timeout(600)
def test_ray_evolve_example_with_a_scripted_endpoint(tmp_path, sandbox_image, upstream):
    # The scripted upstream (control flow, not skill) drives the episodes and the mutations on a local Ray.
    out = _run_example(
        "ray_evolve.py", tmp_path, "--base-url", upstream.url, "--model", "upstream", "--max-nodes", "2"
    )
    assert "on Ray (local, 2 workers)" in out and "stopped: nodes; 2 nodes" in out, out


def test_compare_arms_example_with_a_scripted_endpoint(tmp_path, sandbox_image, upstream):
    # The scripted upstream (control flow, not skill) writes add(a, b): the first test task (answer) fails in both.
    out = _run_example(
        "compare_arms.py", tmp_path, "--limit", "1", "--base-url", upstream.url, "--model", "upstream"
    )
    assert "short vs base: pass@1 0.000 vs 0.000, no detected difference +0.000" in out, out
    assert "exact McNemar (sign) test), won 0 lost 0 of 1 tasks" in out
    assert Path(out.split("results: ", 1)[1].split()[0]).is_file()


def test_memory_learning_example_with_a_scripted_endpoint(tmp_path, sandbox_image, upstream):
    # The scripted upstream (control flow, not skill) answers with tool calls: they write add(a, b) for the seed's tool
    # loop, hold no code for its direct answer (so add passes or not with the seed's strategy), and hold no lessons
    # when asked to reflect: the example must say so, not fail.
    out = _run_example(
        "memory_learning.py", tmp_path, "--tasks", "1", "--base-url", upstream.url, "--model", "upstream"
    )
    assert re.search(r"train: [01]/1 passed; lessons proposed 0, verified and written 0", out), out
    assert "on vs off: pass@1 0.000 vs 0.000, no detected difference +0.000" in out, out  # through compare
    library = Path(out.split("the library: ", 1)[1].split()[0])
    assert (
        library.is_dir() and library.parent.parent == tmp_path
    )  # a fresh library, in the learning run's folder
