"""examples/self_training.py keeps running (the dataset part; training is covered by test_lora_loop.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "self_training.py"


@pytest.mark.slow
def test_self_training_example_builds_a_dataset_from_a_recorded_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first.startswith("dataset: 4 train rows from tasks ['arith/q0-0'") and "held out: []" in first
    assert second.startswith("dropped: {}; data sha256 ") and "rft-" in second
