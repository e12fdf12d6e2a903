"""``agentevo demo`` end to end on the real embedded model (the llama.cpp backbone on a CPU machine): the seed is
gated and scored, the ``reflect`` operator makes one child with a real model call, and whatever it produces is
recorded correctly (a gate refusal is a correct outcome). Shortened: one task, two steps, no safety probes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentevo.evolve.gates import GateFailure

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_demo_evolves_the_seed_with_the_embedded_model_and_says_where(sandbox_image, tmp_path):
    env = dict(os.environ, AGENTEVO_ARCHIVES_DIR=str(tmp_path / "archives"))
    args = ["--max-nodes", "2", "--tasks", "1", "--max-steps", "2", "--safety", "off", "--minutes", "10"]
    done = subprocess.run(
        [sys.executable, "-m", "agentevo", "demo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=880,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [run_dir] = [p for p in (tmp_path / "archives").iterdir() if (p / "evolve.json").exists()]
    nodes = {n["id"]: n for n in json.loads((run_dir / "nodes.json").read_text())}
    seed = nodes["n0"]
    assert seed["gate"]["passed"] and seed["scores"]["small"]["tasks"] == 1
    child = nodes["n1"]
    assert child["operator"] == "reflect" and child["parent"] == "n0" and child["gate"] is not None
    if child["gate"]["passed"]:
        assert child["scores"]["small"]["tasks"] == 1
    else:
        assert GateFailure(child["gate"]["failure"]) and child["gate"]["reason"] and not child["scores"]
    calls = [json.loads(line) for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    [reflection] = [c for c in calls if c["task_id"] == "evolve/reflect"]
    assert reflection["agent_id"] == "n0" and reflection["completion_tokens"] > 0
    out = " ".join(done.stderr.split())  # rich wraps long lines
    assert f"archive: {run_dir}" in out and f"agentevo archive tree {run_dir.name}" in out, done.stderr[
        -2000:
    ]
    print(f"\nchild n1: {child['gate']}")
