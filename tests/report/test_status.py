"""`agentevo status` on a real evolution run while it runs (sampled by the fixture), after it finished, and on a
copy left with work undone (as a kill leaves it); and on a suite run. Reads only the folder and the machine."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from typer.testing import CliRunner

from agentevo.archive import Archive
from agentevo.cli.main import app
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.report import RunState, run_status
from agentevo.runs import RunDir
from tests.report.conftest import running

# The shared evolution fixture runs real Docker episodes (3-4 min measured on 2 cores at load 15, more on a
# busier machine); its setup is charged to the first test that needs it.
pytestmark = pytest.mark.timeout(900)


def test_status_while_the_run_is_live(evolution):
    live = running(evolution)
    assert live, [s.state for s in evolution.live]
    assert all(any(p.startswith(f"{evolution.pid} ") for p in s.processes) for s in live)
    doing = [job for s in live for job in s.running]
    assert any(job.startswith("evaluate n") and "stage small" in job for job in doing), doing
    assert any(job.startswith("LLM calls: n") for job in doing), doing
    assert all(s.budgets[0].name == "nodes" and s.budgets[0].limit == 4 for s in live)
    assert any(b.name == "seconds" and b.used > 0 for b in live[-1].budgets)


def test_status_of_the_finished_run(evolution):
    status = run_status(evolution.run_dir)
    assert status.state is RunState.finished and not status.processes and status.running == []
    assert (status.best, status.best_score, status.best_tasks) == ("n1", 1.0, 1)
    assert status.nodes == 4 and status.admitted == 2 and status.rejected == {"protected": 1, "empty_diff": 1}
    nodes, tokens = status.budgets[:2]
    assert (nodes.used, nodes.limit, nodes.left) == (4, 4, 0) and tokens.used > 0 and tokens.limit is None
    assert status.sandboxes == []  # the run's containers are gone with it
    env = {"AGENTEVO_ARCHIVES_DIR": str(evolution.archives)}
    done = CliRunner().invoke(app, ["status", evolution.run_dir.name], env=env, terminal_width=200)
    assert done.exit_code == 0, done.output
    assert "finished" in done.output and "n1 (score 1.00 on 1 task)" in done.output
    assert "4 used of 4, 0 left" in done.output
    done = CliRunner().invoke(app, ["status", "--json"], env=env)  # the newest run by default
    assert json.loads(done.stdout)["best"] == "n1"


def test_a_run_left_with_work_undone_says_how_to_resume(evolution, tmp_path):
    copy = tmp_path / evolution.run_dir.name
    shutil.copytree(evolution.run_dir, copy)
    with Archive.open(copy) as archive:  # a child committed and admitted, then the process was killed
        archive.add(archive.export("n1", tmp_path / "child"), parent="n1", operator="scripted", change="late")
    status = run_status(copy)
    assert status.state is RunState.stopped and status.running == ["gate n4"]
    assert f"agentevo evolve --resume {copy.name}" in status.hint


def test_status_of_a_suite_run(tmp_path):
    run = RunDir(tmp_path)
    run.describe(command="agentevo run", tasks=3, attempts=1, started=time.time())
    with ResultsStore(run.path / "results.sqlite") as store:
        store.add(ResultRow(run_id=run.run_id, agent_id="seed", task_id="builtin/a", passed=True, score=1.0))
    status = run_status(run.path)
    assert (status.kind, status.state, status.episodes, status.passed, status.planned) == (
        "suite",
        RunState.stopped,
        1,
        1,
        3,
    )
    assert "interrupted or killed" in status.hint
    run.describe(finished=time.time())
    assert run_status(run.path).state is RunState.finished


def test_status_of_an_unknown_run_is_one_line(tmp_path):
    done = CliRunner().invoke(app, ["status", "nope"], env={"AGENTEVO_ARCHIVES_DIR": str(tmp_path)})
    assert done.exit_code == 2 and "no run 'nope'" in done.output and "Traceback" not in done.output
    (tmp_path / "empty").mkdir()
    done = CliRunner().invoke(app, ["status", str(tmp_path / "empty")])
    assert done.exit_code == 2 and "not a run folder" in done.output
