"""Any archive node runs like an agent folder: ``agentevo run --agent archive:RUN:NODE`` (the real
embedded model on the llama.cpp backbone, one task), and the run's folder records what is needed to
reproduce it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from agentevo.agents import seed_agent_dir
from agentevo.archive import Archive


def test_an_archive_node_runs_and_the_run_is_described(sandbox_image, tmp_path):
    runs = tmp_path / "archives"
    evolved = tmp_path / "evolved"
    shutil.copytree(seed_agent_dir(), evolved, ignore=shutil.ignore_patterns("__pycache__"))
    (evolved / "NOTES.md").write_text("a hand-made child\n")
    with Archive(runs / "evo") as archive:
        archive.add(seed_agent_dir())
        child = archive.add(evolved, parent="n0", operator="manual", change="add notes")
    command = [
        sys.executable, "-m", "agentevo", "run", "--agent", f"archive:evo:{child.id}", "--suite", "builtin",
        "--split", "all", "--limit", "1", "--max-steps", "2", "--parallel", "1", "--backbone", "llamacpp",
    ]  # fmt: skip
    env = {"AGENTEVO_ARCHIVES_DIR": str(runs), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path.home()),
           "AGENTEVO_LLM__MAX_TOKENS": "128"}  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    [run_dir] = [p for p in runs.iterdir() if p.name != "evo"]
    assert (run_dir / "agent" / "NOTES.md").read_text() == "a hand-made child\n"  # the node's own tree ran
    described = json.loads((run_dir / "run.json").read_text())
    assert described["agent"] == "archive:evo:n1" and described["config"]["llm"]["backbone"] == "llamacpp"
    assert described["sandbox_image"].startswith("agentevo-python:") and described["agentevo_version"]
    assert described["model_manifest_sha256"] and "agentevo_commit" in described
    missing = subprocess.run(
        [*command[:5], "archive:evo:n9"], capture_output=True, text=True, env=env, check=False
    )
    assert missing.returncode == 2 and "no node 'n9'" in missing.stderr and "Traceback" not in missing.stderr
