"""One small real evolution (tests/report/scripted_run.py), watched live with ``run_status`` while it runs and
shared by the report and status tests."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentevo.report import RunState, RunStatus, run_status

ROOT = Path(__file__).resolve().parents[2]
RUN_LIMIT_S = 840  # 2 Docker episodes: 3-4 min measured at load 15 on 2 cores; far longer under heavier load


@dataclass
class Evolution:
    archives: Path
    run_dir: Path
    pid: int
    live: list[RunStatus]  # what `agentevo status` said while the run was going
    output: str


@pytest.fixture(scope="session")
def evolution(tmp_path_factory, sandbox_image) -> Evolution:
    archives = tmp_path_factory.mktemp("report") / "archives"
    archives.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.report.scripted_run", str(archives)], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    lines = []
    try:
        for _ in range(50):  # warnings may come first
            lines.append(child.stdout.readline())
            if lines[-1].startswith("RUN "):
                break
        run_dir = archives / lines[-1].split()[-1]
        live: list[RunStatus] = []
        deadline = time.monotonic() + RUN_LIMIT_S
        while child.poll() is None and time.monotonic() < deadline:
            # A bounded sample of what status says while the run is live, taken all along the run: the first 30,
            # then up to 10 more that show an episode's recent LLM calls (rare on a busy machine).
            status = run_status(run_dir)
            calls = any(job.startswith("LLM calls:") for job in status.running)
            if len(live) < 30 or (calls and len(live) < 40):
                live.append(status)
            time.sleep(1.5)
        out, _ = child.communicate(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = "".join(lines) + out
    assert child.returncode == 0 and f"DONE nodes {4}" in output, output[-3000:]
    return Evolution(archives=archives, run_dir=run_dir, pid=child.pid, live=live, output=output)


def running(evolution: Evolution) -> list[RunStatus]:
    return [s for s in evolution.live if s.state is RunState.running]
