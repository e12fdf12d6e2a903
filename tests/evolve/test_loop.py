"""The loop on real Docker and a real archive, driven by the scripted model and scripted operators (control
flow, not model quality): a known fix is admitted and preferred, hostile children are refused with the right
reason while the run goes on, and a run killed with SIGKILL resumes without duplicating a node or an evaluation.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentevo.archive import Archive, EventKind
from agentevo.archive.stats import archive_stats
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.budget import StopCause
from agentevo.evolve.gates import GateFailure
from agentevo.evolve.policies import DGM, HGM, SICA, Greedy, Latest, Pareto
from agentevo.evolve.start import evolve_run, open_run
from agentevo.sandbox.reaper import reap
from tests.evolve import scripted

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def archives(tmp_path, sandbox_image) -> Path:
    return tmp_path / "archives"


@pytest.mark.timeout(900)
def test_fix_is_admitted_and_preferred_and_hostile_children_are_refused(archives):
    config, evolve = scripted.settings(archives, max_nodes=7)
    run, evolve = open_run(config, evolve, seed=scripted.weakened_seed(archives / "seed"))
    status, seconds = scripted.evolve_scripted(config, evolve, run, [
        scripted.fix, scripted.crash_on_import, scripted.forge_result, scripted.edit_protected, scripted.no_change,
        scripted.weaken,
    ])  # fmt: skip
    assert status.cause is StopCause.nodes and status.nodes == 7, status
    assert status.best == "n1" and status.error is None
    with Archive.open(run.path) as archive, ResultsStore(run.path / "results.sqlite") as store:
        nodes = {n.id: n for n in archive.nodes()}
        assert nodes["n1"].gate.passed and nodes["n1"].parent == "n0"
        assert nodes["n1"].scores["small"].score > nodes["n0"].scores["small"].score
        assert nodes["n1"].scores["small"].tasks_passed == 2 and nodes["n0"].scores["small"].tasks_passed == 0
        refused = {n: GateFailure(nodes[n].gate.failure) for n in ("n2", "n3", "n4", "n5", "n6")}
        assert refused == {
            "n2": GateFailure.contract, "n3": GateFailure.contract, "n4": GateFailure.protected,
            "n5": GateFailure.empty_diff, "n6": GateFailure.duplicate,
        }, {n: nodes[n].gate for n in refused}  # fmt: skip
        assert (
            "does_not_import" in nodes["n2"].gate.reason and "foreign_result_line" in nodes["n3"].gate.reason
        )
        assert "run.py" in nodes["n4"].gate.reason and "n0" in nodes["n6"].gate.reason
        assert all(
            not n.scores for i, n in nodes.items() if i not in ("n0", "n1")
        )  # refused: never evaluated
        rows = store.rows(run.run_id)
        assert Counter(r.agent_id for r in rows) == {"n0": 3, "n1": 3}  # result rows keyed by node
        stats = archive_stats(archive, store, run.run_id)
    # Each policy prefers the fixed child, as its formula says.
    rng = random.Random(0)
    dgm = DGM().weights(stats)
    # sigmoid(10 (2/3 - 1/2)) / (1 + 0) vs sigmoid(-5) / (1 + 1): n0's five refused children do not count
    assert dgm["n1"] > 20 * dgm["n0"]
    assert dgm["n0"] == pytest.approx(
        (1 / (1 + math.exp(5)) / 2) / (1 / (1 + math.exp(5)) / 2 + 1 / (1 + math.exp(-10 / 6)))
    )
    assert Greedy().choose(stats, rng) == "n1" and Latest().choose(stats, rng) == "n1"
    assert SICA().choose(stats, rng) == "n1"
    assert Pareto().weights(stats) == {"n1": 1.0}
    picks = Counter(HGM().choose(stats, rng) for _ in range(400))
    assert picks["n1"] > picks["n0"]
    print(f"\n7 nodes (2 evaluated on 3 tasks, 5 refused) in {seconds:.1f} s")


def _rows_of(db: Path, agent: str) -> set[str]:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return {t for (t,) in conn.execute("SELECT task_id FROM results WHERE agent_id = ?", (agent,))}
    except sqlite3.OperationalError:  # not created yet
        return set()


def _start(archives: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.evolve.scripted", str(archives), "4", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.timeout(1200)
def test_kill_9_mid_evaluation_then_resume_loses_and_duplicates_nothing(archives):
    archives.mkdir(parents=True)
    child = _start(archives)
    lines = (child.stdout.readline() for _ in range(50))  # warnings may come first
    run_id = next(line for line in lines if line.startswith("RUN ")).split()[-1]
    db = archives / run_id / "results.sqlite"
    deadline = time.monotonic() + 600  # the machine may be shared and busy
    while not (done_at_kill := _rows_of(db, "n1")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert done_at_kill and len(done_at_kill) < 3, "the kill was meant to land mid-evaluation of n1"
    reap()  # the killed process's sandboxes
    resumed = _start(archives, run_id)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and "DONE nodes 4" in out, out[-3000:]
    with Archive.open(archives / run_id) as archive, ResultsStore(db) as store:
        events = archive.log.replay()
        added = [e.node for e in events if e.kind is EventKind.node_added]
        assert added == ["n0", "n1", "n2", "n3"]
        gates = Counter(e.node for e in events if e.kind is EventKind.gate_decided)
        assert gates == dict.fromkeys(added, 1)
        scored = Counter((e.node, e.data["stage"]) for e in events if e.kind is EventKind.node_scored)
        admitted = [n.id for n in archive.nodes() if n.gate.passed]
        assert scored == {(n, "small"): 1 for n in admitted}
        rows = store.rows(run_id)
        assert Counter(r.agent_id for r in rows) == dict.fromkeys(admitted, 3)
    # The episodes finished before the kill were not run again: each made its max_steps calls, once.
    records = map(json.loads, (archives / run_id / "llm_calls.jsonl").read_text().splitlines())
    calls = Counter(r["task_id"] for r in records if r.get("agent_id") == "n1")
    assert all(calls[task] == 2 for task in done_at_kill), calls


@pytest.mark.parametrize(
    ("budget", "cause"), [({"max_tokens": 1}, StopCause.tokens), ({"max_seconds": 0.5}, StopCause.seconds)]
)
def test_a_spent_budget_stops_the_run_cleanly_and_is_named(archives, budget, cause):
    config, evolve = scripted.settings(archives, max_nodes=5)
    run, evolve = open_run(config, evolve, seed=scripted.weakened_seed(archives / "seed"), budgets=budget)
    status = evolve_run(
        config, evolve, run, backend=scripted.backend(), mutator_backend=scripted.backend(),
        operator=scripted.ScriptedOperator([scripted.fix]), tasks=scripted.tasks(),
    )  # fmt: skip
    assert status.cause is cause and status.nodes < 5 and not status.running
    with Archive.open(run.path) as archive:  # what was in flight when it was spent was finished, not cut off
        assert all(n.gate is not None for n in archive.nodes())


@pytest.mark.slow
def test_resume_of_an_unknown_run_is_one_line(tmp_path):
    env = dict(os.environ, AGENTEVO_ARCHIVES_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "agentevo", "evolve", "--resume", "no-such-run"], env=env, cwd=ROOT, text=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "is not an evolve run" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_bad_suite_is_one_line_before_any_run_folder(tmp_path):
    env = dict(os.environ, AGENTEVO_ARCHIVES_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "agentevo", "evolve", "--suite", "miniwob:no-such-page"], env=env, cwd=ROOT,
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "no miniwob task 'no-such-page'" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())
