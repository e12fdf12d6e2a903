"""``compare`` end to end on real Docker sandboxes, the evaluator and SQLite, with scripted models (control flow,
no model randomness):

- the library, two arms that are the same scripted agent (an A/A comparison), killed with SIGKILL mid-run and
  resumed: every (arm, task, attempt) has one row, the resumed process started exactly the missing episodes
  (the gateway's call record says which ones ran), and the statistics are the exact values of an A/A table;
- the command line against an OpenAI-compatible endpoint (``tests/faults/upstream.py``, a scripted server): the
  table, the summary, the files, an arm added later that runs alone, and ``agentevo report`` of the comparison.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentevo.compare import Comparison
from agentevo.compare.stats import Interval, Method
from agentevo.evaluate.results import ResultsStore
from agentevo.gateway.recorder import TrajectoryRecorder
from agentevo.sandbox.reaper import reap
from tests.agents.scripts import loop_seed
from tests.compare.scripted import ARM_NAMES, ATTEMPTS, TASKS
from tests.faults.conftest import UpstreamProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
EVERY = {(arm, task, attempt) for arm in ARM_NAMES for task in TASKS for attempt in range(ATTEMPTS)}


def _scripted(archives: Path, run_id: str, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.compare.scripted", str(archives), run_id],
            cwd=ROOT, text=True, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _scored(run_dir: Path) -> list[tuple[str, str, int]]:
    if not (run_dir / "results.sqlite").exists():
        return []
    with ResultsStore(run_dir / "results.sqlite") as store:
        return [(r.agent_id, r.task_id, r.attempt) for r in store.rows(run_dir.name) if r.scored]


def _started_since(run_dir: Path, since: float) -> set[tuple[str, str, int]]:
    """The episodes that called the model after ``since``, from the gateway's record of every call."""
    calls = [c for c in TrajectoryRecorder(run_dir).read() if c.time >= since]
    return {(c.agent_id, c.task_id, int(c.episode_id.rsplit("-", 1)[1])) for c in calls}


@pytest.mark.timeout(1200)
def test_two_arms_killed_and_resumed_without_repeating_an_episode(tmp_path, sandbox_image):
    archives, run_id, log = tmp_path / "archives", "aa-kill", tmp_path / "compare.log"
    run_dir = archives / run_id
    child = _scripted(archives, run_id, log)
    try:
        wait_until(
            lambda: len(_scored(run_dir)) >= 5 or child.poll() is not None, 900, "five finished episodes"
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    before = set(_scored(run_dir))
    assert 5 <= len(before) < len(EVERY)  # the baseline done, the second arm begun
    reap()  # the killed process's sandboxes
    resumed_at = time.time()
    resumed = _scripted(archives, run_id, log)
    assert resumed.wait(900) == 0, log.read_text()[-3000:]
    text = log.read_text()
    ran = [tuple(line.split()[1:]) for line in text.splitlines() if line.startswith("ROW ")]
    assert len(ran) == len(set(ran)) and _started_since(run_dir, 0) == EVERY  # no episode finished twice
    assert _started_since(run_dir, resumed_at) == EVERY - before  # no episode with a row was started again
    assert Counter(_scored(run_dir)) == dict.fromkeys(EVERY, 1)  # and every one has exactly one row
    comparison = Comparison.model_validate_json(text.split("DONE ", 1)[1].splitlines()[0])
    _check_a_a(comparison)
    assert json.loads((run_dir / "comparison.json").read_text()) == comparison.model_dump(mode="json")
    assert "exact paired permutation test" in (run_dir / "report.html").read_text()


def _check_a_a(comparison: Comparison) -> None:
    """The A/A table's statistics, exactly: add passes every attempt and square none, in both arms."""
    for arm in comparison.arms:
        assert arm.per_task == {"builtin/add": (2, 2), "builtin/square": (0, 2)}
        assert (arm.pass_at_1, arm.pass_at_k, arm.episodes, arm.planned) == (0.5, 0.5, 4, 4)
        # Tasks 1 and 0, resampled: means 0, 1/2, 1 with chances 1/4, 1/2, 1/4, so the 95 % interval is [0, 1].
        assert arm.pass_at_1_ci == Interval(low=0.0, high=1.0)
        assert arm.tokens_per_task > 0 and arm.seconds_per_task > 0
    (paired,) = comparison.paired
    assert (paired.difference, paired.ci, paired.won, paired.lost, paired.tied) == (
        0.0,
        Interval(low=0, high=0),
        0,
        0,
        2,
    )
    assert paired.ci.contains(0) and paired.p_value > 0.05 and paired.p_value == 1.0  # none found, none there
    assert paired.test is Method.permutation  # two attempts per task
    # Two tasks of two attempts from 1/2: the detectable gain sqrt(z^2 / (2 (4 + z^2))) = 0.58 exceeds the 0.5 left.
    assert paired.mde is None


def agentevo(*args: str, archives: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": "unused", "AGENTEVO_ARCHIVES_DIR": str(archives)}
    return subprocess.run(
        [sys.executable, "-m", "agentevo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.mark.timeout(1200)
def test_the_command_line_against_an_endpoint_and_an_arm_added_later(tmp_path, sandbox_image):
    upstream = UpstreamProcess(free_port()).start()  # scripted: writes add(a, b), then submits
    seed = loop_seed(
        tmp_path / "loop-seed"
    )  # the seed on its tool loop (the upstream answers with tool calls)
    try:
        endpoint = f"base_url={upstream.url},model=upstream"
        first = agentevo(
            "compare", "--arm", f"base={seed},{endpoint}", "--arm", f"short={seed},{endpoint},max_steps=1",
            "--suite", "builtin", "--split", "train", "--limit", "1", "--parallel", "1", archives=tmp_path,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr[-3000:]
        run_dir = Path(first.stderr.split("results: ", 1)[1].split()[0]).parent
        for shown in (
            "pass@1 [95% CI]",
            "vs baseline",
            "short vs base: pass@1 1.000 vs 1.000",
            "exact McNemar",
        ):
            assert shown in first.stderr, first.stderr[-3000:]
        calls = Counter(c.agent_id for c in TrajectoryRecorder(run_dir).read())
        assert calls == {
            "base": 2,
            "short": 1,
        }  # the endpoint answers create, then submit; short stops after one
        hot = f"hot={seed},{endpoint},temperature=0.5"
        added = agentevo("compare", "--run", run_dir.name, "--arm", hot, archives=tmp_path)
        assert added.returncode == 0, added.stderr[-3000:]
        assert Counter(c.agent_id for c in TrajectoryRecorder(run_dir).read()) == {**calls, "hot": 2}
        result = json.loads((run_dir / "comparison.json").read_text())
        assert [a["name"] for a in result["arms"]] == ["base", "short", "hot"]
        assert [a["episodes"] for a in result["arms"]] == [1, 1, 1]
        # A call that names arms runs only those; one that names none runs every arm's missing episodes.
        with sqlite3.connect(run_dir / "results.sqlite") as db:
            db.execute("DELETE FROM results WHERE agent_id = 'short'")
        cold = f"cold={seed},{endpoint},temperature=0.1"
        named = agentevo("compare", "--run", run_dir.name, "--arm", cold, archives=tmp_path)
        assert named.returncode == 0, named.stderr[-3000:]
        calls = Counter(c.agent_id for c in TrajectoryRecorder(run_dir).read())
        assert calls == {"base": 2, "short": 1, "hot": 2, "cold": 2}  # short, not named, was not run again
        every = agentevo("compare", "--run", run_dir.name, archives=tmp_path)
        assert every.returncode == 0, every.stderr[-3000:]
        assert Counter(c.agent_id for c in TrajectoryRecorder(run_dir).read()) == {**calls, "short": 2}
        result = json.loads((run_dir / "comparison.json").read_text())
        assert [a["episodes"] for a in result["arms"]] == [1, 1, 1, 1]
        refused = agentevo("compare", "--run", run_dir.name, "--attempts", "3", archives=tmp_path)
        assert refused.returncode == 2 and "runs attempts 1, not 3: leave --attempts out" in refused.stderr
        (run_dir / "report.html").unlink()
        assert agentevo("report", run_dir.name, archives=tmp_path).returncode == 0  # the run's HTML report
        page = (run_dir / "report.html").read_text()
        assert 'id="comparison"' in page and "hot vs base: pass@1" in page and 'id="per-task"' in page
    finally:
        upstream.kill()
