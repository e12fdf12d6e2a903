"""``agentevo demo`` end to end on the real embedded model (the llama.cpp backbone on a CPU machine): the seed is
gated and scored on ladder train tasks, the genome operators and reflect make children that pass their gates and are scored on
the same tasks, the table of nodes is printed, and ``agentevo compare`` sets the best node against the seed on
held-out ladder tasks. Shortened: two tasks, three nodes, no safety probes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1500)
def test_demo_admits_children_prints_them_and_compares_the_best_with_the_seed(sandbox_image, tmp_path):
    # A llama-server of its own: one another process started may be restarted or stopped under it.
    port = str(free_port())
    env = dict(
        os.environ, AGENTEVO_ARCHIVES_DIR=str(tmp_path / "archives"), AGENTEVO_LLM__LLAMACPP__PORT=port
    )
    args = ["--max-nodes", "3", "--tasks", "2", "--max-steps", "3", "--safety", "off", "--minutes", "8"]
    done = subprocess.run(
        [sys.executable, "-m", "agentevo", "demo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=1400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [run_dir] = [p for p in (tmp_path / "archives").iterdir() if (p / "evolve.json").exists()]
    nodes = {n["id"]: n for n in json.loads((run_dir / "nodes.json").read_text())}
    assert nodes["n0"]["gate"]["passed"] and nodes["n0"]["scores"]["train"]["tasks"] == 2
    children = [n for n in nodes.values() if n["parent"]]
    assert children and all(
        n["operator"] in {"mutate", "crossover", "bootstrap", "reflect"} for n in children
    )
    gated = [n["gate"] for n in children if n["gate"]]
    # reflect samples its edit, and two reflections may still write the same one: that refusal is the gate's job
    assert all(g["passed"] or g["failure"] in {"duplicate", "near_duplicate"} for g in gated), gated
    assert any(g["passed"] for g in gated), gated
    out = " ".join(done.stderr.split())  # rich wraps long lines
    assert f"nodes of {run_dir.name}" in out and "vs parent" in out, done.stderr[-3000:]
    for child in children:
        assert child["id"] in out and child["change"].partition("): ")[2][:20] in out
    [comparison] = [p for p in (tmp_path / "archives").iterdir() if (p / "comparison.json").exists()]
    result = json.loads((comparison / "comparison.json").read_text())
    assert [a["name"] for a in result["arms"]] == ["seed", "best"] and result["paired"][0]["ci"]
    assert "best vs seed: pass@1" in out and "95% CI" in out, done.stderr[-3000:]
