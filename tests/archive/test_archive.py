"""The archive against a real git repository and a real SQLite event log: a seed, three hand-made children
(one a grandchild), their tree, diffs and exports, and a rebuild from the event log."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import git
import pytest

from agentevo.agents import seed_agent_dir
from agentevo.archive import Archive, ArchiveError, StageScore
from agentevo.runs import ARCHIVE_REPO, ARCHIVE_VIEW, RESULTS_DB

PROMPT_FILE = "AGENT.md"


def variant(base: Path, dest: Path, edit: dict[str, str]) -> Path:
    """A copy of the agent folder ``base`` with files replaced or added."""
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in edit.items():
        (dest / name).write_text(text)
    return dest


@pytest.fixture
def built(tmp_path):
    """seed n0 -> n1 (prompt edit) -> n3 (new helper file); n0 -> n2 (gate failed)."""
    run_dir = tmp_path / "run"
    seed = seed_agent_dir()
    archive = Archive(run_dir)
    archive.add(seed)
    one = variant(seed, tmp_path / "v1", {PROMPT_FILE: "Think first, then write the code.\n"})
    two = variant(seed, tmp_path / "v2", {"run.py": "raise SystemExit('broken on purpose')\n"})
    three = variant(one, tmp_path / "v3", {"helpers.py": "def tidy(text):\n    return text.strip()\n"})
    archive.add(one, parent="n0", operator="manual", change="ask for a plan first")
    archive.add(two, parent="n0", operator="manual", change="break the entry point")
    archive.add(three, parent="n1", operator="manual", change="add a helper")
    archive.record_gate("n1", True)
    archive.record_gate("n2", False, "the agent crashes at start")
    archive.record_gate("n3", True)
    archive.record_score(
        "n0", "validation", StageScore(score=0.25, tasks=8, tasks_passed=2, tokens=900, seconds=4)
    )
    archive.record_score(
        "n1", "validation", StageScore(score=0.5, tasks=8, tasks_passed=4, tokens=800, seconds=3)
    )
    archive.record_score("n3", "validation", StageScore(score=0.375, tasks=8, tasks_passed=3))
    yield archive, run_dir
    archive.close()


def test_lineage_is_git_history(built):
    archive, run_dir = built
    nodes = {n.id: n for n in archive.nodes()}
    assert [(n.id, n.parent, n.generation) for n in nodes.values()] == [
        ("n0", None, 0), ("n1", "n0", 1), ("n2", "n0", 1), ("n3", "n1", 2),
    ]  # fmt: skip
    repo = git.Repo(run_dir / ARCHIVE_REPO)
    for node in nodes.values():
        commit = repo.commit(node.commit)
        expected = [nodes[node.parent].commit] if node.parent else []
        assert [p.hexsha for p in commit.parents] == expected  # a child's git parent is its archive parent
        assert repo.git.rev_parse(f"refs/nodes/{node.id}") == node.commit
    seed_files = sorted(p.name for p in seed_agent_dir().iterdir() if p.is_file() and p.suffix != ".pyc")
    assert sorted(b.name for b in repo.commit(nodes["n0"].commit).tree.blobs) == seed_files
    assert nodes["n2"].gate.passed is False and "crashes" in nodes["n2"].gate.reason
    assert nodes["n1"].scores["validation"].tasks_passed == 4 and nodes["n1"].tokens == 800


def test_diffs_are_against_the_archive_parent(built):
    archive, _ = built
    one = archive.diff("n1")
    assert "+Think first, then write the code." in one and "helpers.py" not in one
    three = archive.diff("n3")
    assert "+++ b/helpers.py" in three and "AGENT.md" not in three  # against n1, which had the prompt edit
    assert archive.node("n3").diff_lines == 2
    assert archive.node("n0").diff_lines > 100  # the seed against nothing


def test_the_repository_answers_about_commits_by_name(built):
    """What gates and genome operators ask of the repository: trees, changed files, listings, file texts."""
    archive, _ = built
    repo, commit = archive.repo, {n.id: n.commit for n in archive.nodes()}
    assert repo.tree_of(commit["n0"]) != repo.tree_of(commit["n1"]) == repo.tree_of(commit["n1"])
    assert repo.changed_files(commit["n1"], commit["n3"]) == ["helpers.py"]
    assert sorted(repo.changed_files(commit["n0"], commit["n3"])) == [PROMPT_FILE, "helpers.py"]
    files = repo.files_at(commit["n3"])
    assert files.keys() - repo.files_at(commit["n1"]).keys() == {"helpers.py"}
    assert files["run.py"] == repo.files_at(commit["n0"])["run.py"]  # same contents, same blob
    assert repo.read_at(commit["n3"], "helpers.py").startswith("def tidy")
    with pytest.raises(KeyError, match="helpers.py is not in commit"):
        repo.read_at(commit["n1"], "helpers.py")
    bare = repo.diff(commit["n1"], commit["n3"], context=0)
    assert "@@ -0,0 +1,2 @@" in bare and "+def tidy(text):" in bare


def test_export_gives_the_nodes_agent_package(built, tmp_path):
    archive, _ = built
    out = archive.export("n3", tmp_path / "exported")
    assert (out / "helpers.py").read_text().startswith("def tidy")
    assert (out / PROMPT_FILE).read_text() == "Think first, then write the code.\n"
    assert (out / "graph.py").read_text() == (seed_agent_dir() / "graph.py").read_text()
    with pytest.raises(FileExistsError):
        archive.export("n1", out)


def test_views_rebuild_from_the_event_log(built):
    archive, run_dir = built
    before = json.loads((run_dir / ARCHIVE_VIEW).read_text())
    (run_dir / ARCHIVE_VIEW).unlink()
    archive.close()
    reopened = Archive.open(run_dir)
    rebuilt = reopened.rebuild()
    assert json.loads((run_dir / ARCHIVE_VIEW).read_text()) == before
    assert [n.model_dump() for n in rebuilt] == [n.model_dump() for n in archive.nodes()]
    with sqlite3.connect(run_dir / RESULTS_DB) as db:  # append-only: one row per event, in order
        kinds = [k for (k,) in db.execute("SELECT kind FROM archive_events ORDER BY seq")]
    assert kinds == ["node_added"] * 4 + ["gate_decided"] * 3 + ["node_scored"] * 3
    reopened.close()


def test_bad_requests_name_the_fix(built, tmp_path):
    archive, _ = built
    with pytest.raises(ArchiveError, match="nodes: n0, n1, n2, n3"):
        archive.diff("n9")
    with pytest.raises(ArchiveError, match="already has its seed"):
        archive.add(seed_agent_dir())
    with pytest.raises(ArchiveError, match="holds no archive"):
        Archive.open(tmp_path / "nowhere")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentevo", *args], check=False, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_cli_shows_tree_diff_and_export(built, tmp_path):
    _, run_dir = built
    tree = cli("archive", "tree", str(run_dir))
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("n0 seed validation 0.25 (2/8)")
    assert any("n3 manual validation 0.38 (3/8)" in line for line in lines)
    assert any("n2 manual" in line and "gate failed: the agent crashes at start" in line for line in lines)
    assert "+Think first" in cli("archive", "diff", str(run_dir), "n1").stdout
    shown = json.loads(cli("archive", "show", str(run_dir), "n2").stdout)
    assert shown["gate"] == {"passed": False, "reason": "the agent crashes at start", "failure": None}
    exported = cli("archive", "export", str(run_dir), "n1", str(tmp_path / "n1"))
    assert exported.returncode == 0 and (tmp_path / "n1" / PROMPT_FILE).exists()
    missing = cli("archive", "diff", str(run_dir), "n7")
    assert missing.returncode == 1 and "no node 'n7'" in missing.stderr and "Traceback" not in missing.stderr
