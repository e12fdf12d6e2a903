"""Exact resume and clean stops, on real Docker with the scripted model (control flow): SIGKILL during a
meta-step, inside an event's transaction and between an event and its view, then ``--resume``; SIGINT waits for
the running jobs and says so. The archive and the results are complete afterwards, with no duplicate node,
gate or evaluation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentevo.archive import Archive, EventKind
from agentevo.evaluate.results import ResultsStore
from agentevo.sandbox.reaper import reap

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def archives(tmp_path, sandbox_image) -> Path:
    folder = tmp_path / "archives"
    folder.mkdir(parents=True)
    return folder


def _start(archives: Path, nodes: int, *resume: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.evolve.scripted", str(archives), str(nodes), *resume], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env},
    )  # fmt: skip


def _run_id(child: subprocess.Popen[str]) -> str:
    lines = (child.stdout.readline() for _ in range(50))  # warnings may come first
    return next(line for line in lines if line.startswith("RUN ")).split()[-1]


def _wait_for(predicate, child: subprocess.Popen[str], seconds: float = 600) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and child.poll() is None:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _finish(archives: Path, run_id: str, nodes: int, **env: str) -> str:
    reap()  # the killed process's sandboxes
    resumed = _start(archives, nodes, run_id, **env)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and f"DONE nodes {nodes}" in out, out[-3000:]
    return out


def _consistent(run_dir: Path, nodes: int) -> Archive:
    """Each node added, gated and scored exactly once; rows match; the view is the fold of the log."""
    archive = Archive.open(run_dir)
    events = archive.log.replay()
    added = [e.node for e in events if e.kind is EventKind.node_added]
    assert added == [f"n{i}" for i in range(nodes)], added
    assert Counter(e.node for e in events if e.kind is EventKind.gate_decided) == dict.fromkeys(added, 1)
    admitted = [n.id for n in archive.nodes() if n.gate.passed]
    scored = Counter((e.node, e.data["stage"]) for e in events if e.kind is EventKind.node_scored)
    assert scored == {(n, "small"): 1 for n in admitted}, scored
    with ResultsStore(run_dir / "results.sqlite") as store:
        assert Counter(r.agent_id for r in store.rows(run_dir.name)) == dict.fromkeys(admitted, 3)
    view = {n["id"]: n for n in json.loads((run_dir / "nodes.json").read_text())}
    assert view == {n.id: n.model_dump(mode="json") for n in archive.nodes()}
    return archive


@pytest.mark.timeout(1500)
def test_kill_9_during_a_meta_step_then_resume(archives):
    child = _start(archives, 3, EVOLVE_MODE="meta")
    run_id = _run_id(child)
    calls = archives / run_id / "llm_calls.jsonl"

    def coding() -> bool:  # the meta-step's coding agent has made a call: it is mid-episode in its sandbox
        return calls.exists() and '"agent_id":"meta:n0"' in calls.read_text()

    assert _wait_for(coding, child), "the meta-step never started"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    with Archive.open(archives / run_id) as archive:
        assert [n.id for n in archive.nodes()] == ["n0"]  # the interrupted expansion left no node
    _finish(archives, run_id, 3, EVOLVE_MODE="meta")
    with _consistent(archives / run_id, 3) as archive:
        child_node = archive.node("n1")
        assert child_node.operator == "meta" and "solution file" in child_node.change
        assert "Be terse." in archive.diff("n1")


@pytest.mark.timeout(1500)
def test_kill_9_inside_an_event_write_and_before_its_view_then_resume(archives):
    # Events: gate n0 (1), n0 scored (2), n1 added (3) <- killed inside its transaction.
    child = _start(archives, 3, EVOLVE_KILL_AT="event:3")
    run_id = _run_id(child)
    child.wait(600)
    assert child.returncode == -signal.SIGKILL
    with Archive.open(archives / run_id) as archive:
        assert [e.kind for e in archive.log.replay()][
            -1
        ] is EventKind.node_scored  # the insert was rolled back
    # Resumed, and killed again between its 2nd event and that event's view.
    again = _start(archives, 3, run_id, EVOLVE_KILL_AT="view:2")
    again.wait(600)
    assert again.returncode == -signal.SIGKILL
    stale = json.loads((archives / run_id / "nodes.json").read_text())
    with Archive.open(archives / run_id) as archive:
        folded = [n.model_dump(mode="json") for n in archive.nodes()]
    # The log is ahead of the stale view (which event that was, n1's gate or another worker's node, depends on
    # the two workers' timing) and the archive is folded from the log, not from the view.
    assert folded != stale and len(folded) >= len(stale)
    _finish(archives, run_id, 3)
    _consistent(archives / run_id, 3).close()


@pytest.mark.timeout(1500)
def test_ctrl_c_waits_for_the_running_evaluation_and_says_so(archives):
    child = _start(archives, 4)
    run_id = _run_id(child)
    db = archives / run_id / "results.sqlite"

    def evaluating_n1() -> bool:
        if not db.exists():
            return False
        with ResultsStore(db) as store:
            return any(r.agent_id == "n1" for r in store.rows(run_id))

    assert _wait_for(evaluating_n1, child), "n1 was never evaluated"
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=600)
    assert child.returncode == 0 and "DONE interrupted" in out, out[-3000:]
    assert "interrupted: starting nothing new; waiting for the" in out and "evaluate n1" in out, out[-3000:]
    with Archive.open(archives / run_id) as archive, ResultsStore(db) as store:
        assert "small" in archive.node("n1").scores  # the running evaluation was finished, not cut off
        assert Counter(r.agent_id for r in store.rows(run_id))["n1"] == 3
    _finish(archives, run_id, 4)  # and the run resumes from there
    _consistent(archives / run_id, 4).close()


def test_a_resumed_run_evolves_on_the_tasks_it_was_given(tmp_path):
    """A demo gives its run a spread of tasks; ``agentevo evolve --resume`` gives none, and must not fall back to
    the split's first tasks (every node is compared on the same tasks). A run given none uses the split."""
    from agentevo.config.evolve import EvolveConfig
    from agentevo.evolve.start import run_tasks
    from agentevo.runs import RunDir
    from agentevo.tasks.spread import chosen

    evolve = EvolveConfig(suite="ladder", split="train")
    given = chosen("ladder", "train", 6, True)
    run = RunDir(tmp_path)
    assert run_tasks(run, evolve, given) == given
    resumed = run_tasks(RunDir(tmp_path, run.run_id), evolve, None)
    assert (
        [t.id for t in resumed]
        == [t.id for t in given]
        != [t.id for t in chosen("ladder", "train", 6, False)]
    )
    fresh = run_tasks(RunDir(tmp_path), evolve, None)
    assert [t.id for t in fresh] == [t.id for t in chosen("ladder", "train", None, False)]
