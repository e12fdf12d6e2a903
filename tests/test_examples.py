"""The examples are part of the public API's documentation: they must keep running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
