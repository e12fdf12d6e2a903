"""The real embedded model (SmolLM2-135M on its own llama.cpp server) plays one MiniWoB++ episode end to end
through ``agentevo run --suite miniwob:click-button``: the web seed agent in its sandbox, the browser in
another, and the page's reward recorded in the run's results. Whether the tiny model wins is not asserted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)  # two busy cores: starting llama.cpp and the browser can take minutes
def test_agentevo_run_plays_a_web_task_with_the_real_model(
    tmp_path: Path, web_image: str, sandbox_image: str
) -> None:
    env = {
        **os.environ,
        "AGENTEVO_ARCHIVES_DIR": str(tmp_path),
        "AGENTEVO_LLM__LLAMACPP__PORT": str(free_port()),  # its own server, not one another process shares
        "AGENTEVO_LLM__LLAMACPP__PARALLEL": "1",
        "AGENTEVO_RESILIENCE__HEALTH_DEADLINE": "60",
        "AGENTEVO_LLM__MAX_TOKENS": "128",  # short replies: what the page records is the point, not the prose
    }
    cmd = [sys.executable, "-m", "agentevo", "run", "--suite", "miniwob:click-button", "--split", "all",
           "--backbone", "llamacpp", "--max-steps", "2", "--parallel", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "results.jsonl").exists()]
    (row,) = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    episode = row["detail"]  # the episode's record, kept in its row
    assert row["task_id"] == "miniwob/click-button" and episode["calls"] >= 1, row
    assert episode["stop_reason"] in {"submitted", "step_budget", "stopped"}, episode
    score = episode["score"]
    assert isinstance(score["done"], bool) and isinstance(score["raw_reward"], float), score
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        (passed, value, tokens) = db.execute("select passed, score, tokens from results").fetchone()
    assert bool(passed) == (score["done"] and score["raw_reward"] > 0) and tokens > 0
    assert value == (max(0.0, score["raw_reward"]) if score["done"] else 0.0)
    output = proc.stdout + proc.stderr
    assert "web_seed: pass@1" in output and "results:" in output
