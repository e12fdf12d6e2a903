"""``agentevo memory``: list, search, show, export, import, quarantine, purge and serve, on a real library."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentevo.cli import memory as memory_cli
from agentevo.cli.common import state
from agentevo.config import AgentevoConfig
from agentevo.memory import Library, MemoryConfig
from agentevo.memory.owner import SERVER_FILE
from agentevo.memory.store import ChromaRecords
from tests.memory.conftest import lesson

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def memory_dir(tmp_path):
    path = tmp_path / "memory"
    with Library(ChromaRecords.open_local(path)) as library:
        library.add(
            lesson("the task formats money amounts", "use f'{x:,.2f}' for thousands separators", "run-1")
        )
        library.add(
            lesson("the task reads a large log file", "iterate over the file object line by line", "run-2")
        )
    state.config = AgentevoConfig(memory=MemoryConfig(path=path))
    yield path
    state.config = None


def invoke(*args: str) -> str:
    result = runner.invoke(memory_cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_list_search_show_quarantine_export_import_purge(memory_dir, tmp_path):
    assert "2 lessons in" in invoke("list")
    found = invoke("search", "print an amount of money with commas")
    assert "thousands" in found and "log file" not in found
    with Library(ChromaRecords.open_local(memory_dir)) as library:
        money = next(x for x in library.lessons() if "money" in x.trigger)
    assert '"source": "run-1"' in invoke("show", money.id[:8])
    assert "quarantined" in invoke("quarantine", money.id, "--reason", "checked by hand")
    assert "no lesson is relevant" in invoke("search", "print an amount of money with commas")
    assert "1 lessons" in invoke("list", "--status", "quarantined")
    assert "exported 2 lessons" in invoke("export", str(tmp_path / "out.jsonl"))
    assert "1 lessons deleted" in invoke("purge", "--source", "run-2")
    assert "imported 2 lessons" in invoke("import", str(tmp_path / "out.jsonl"))
    assert "2 lessons in" in invoke("list")
    bad = runner.invoke(memory_cli.app, ["list", "--status", "dormant"])
    assert bad.exit_code == 2 and "use one of active" in bad.output
    missing = runner.invoke(memory_cli.app, ["show", "nope"])
    assert missing.exit_code == 1 and "no lesson nope" in missing.output


def test_serve_owns_the_directory_and_other_commands_go_through_it(memory_dir):
    env = os.environ | {"AGENTEVO_MEMORY__PATH": str(memory_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentevo", "memory", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        assert url in (memory_dir / SERVER_FILE).read_text()
        assert "2 lessons in" in invoke("list")  # found the service, did not open the directory
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert not (memory_dir / SERVER_FILE).exists()
    ChromaRecords.open_local(memory_dir).close()  # the lock was released
