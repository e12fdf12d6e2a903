"""The agent contract: its helpers, and the conformance check on the seed, a bring-your-own agent and
agent folders that break it in each way (every one runs in a real sandbox behind a real gateway; the
model is scripted, since the check is about the contract, not about solving)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentevo import contract
from agentevo.agents import seed_agent_dir
from agentevo.agents.check import Failure, check_agent
from agentevo.contract import EpisodeArgs, ResultStatus, StopReason

BYO = Path(__file__).resolve().parents[2] / "examples" / "byo_agent"


def test_command_and_arguments_round_trip():
    args = EpisodeArgs(episode="ep-1", max_steps=5, max_tokens=900)
    line = contract.command(args)
    assert line.startswith(f"cd {contract.PACKAGE_ROOT} && python -m {contract.ENTRY_MODULE} ")
    assert contract.parse_args(line.split(" && ", 1)[1].split()[3:]) == args


def test_result_lines_are_read_for_this_episode_only():
    ours = contract.result_line("ep-1", StopReason.submitted, 3, 120)
    forged = contract.result_line("ep-2", StopReason.submitted, 1, 1)
    assert contract.read_result(f"noise\n{ours}\n{forged}\n", "ep-1").stop_reason is StopReason.submitted
    assert contract.read_result(forged, "ep-1").status is ResultStatus.foreign
    assert contract.read_result("AGENTEVO-AGENT {not json", "ep-1").status is ResultStatus.malformed
    assert contract.read_result("", "ep-1").status is ResultStatus.missing
    # An agent cannot claim the machine failed under it: that would hide its failure from the scores.
    claimed = contract.result_line("ep-1", StopReason.submitted, 0, 0).replace("submitted", "docker_error")
    assert contract.read_result(claimed, "ep-1").stop_reason is StopReason.stopped


@pytest.mark.parametrize("folder", [seed_agent_dir(), BYO], ids=["seed", "byo_agent"])
def test_conforming_agents_pass_the_check(sandbox_image, folder):
    report = check_agent(folder)
    assert report.passed, report.failures
    assert report.stop_reason in {r.value for r in StopReason if r.reportable}


BROKEN = {
    "does_not_import": (
        {"run.py": "import no_such_module_anywhere\n"},
        Failure.does_not_import,
        "no_such_module",
    ),
    "no_entry": ({"run.py": None}, Failure.no_entry, "run.py"),
    "never_prints_a_result": (
        {"run.py": "print('working on it')\n"},
        Failure.no_result_line,
        "no result line",
    ),
    "forged_result_for_another_episode": (
        {"run.py": f"print({contract.result_line('some-other-episode', 'submitted', 1, 1)!r})\n"},
        Failure.foreign_result_line,
        "other episodes",
    ),
    "crashes_at_start": (
        {"run.py": "if __name__ == '__main__':\n    raise RuntimeError('boom at start')\n"},
        Failure.crashes_at_start,
        "boom at start",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_agents_fail_with_the_right_reason(sandbox_image, tmp_path, name):
    files, failure, words = BROKEN[name]
    folder = tmp_path / "agent"
    shutil.copytree(BYO, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file, text in files.items():
        if text is None:
            (folder / file).unlink()
        else:
            (folder / file).write_text(text)
    report = check_agent(folder)
    assert [f.failure for f in report.failures] == [failure]
    assert words in report.failures[0].reason


def test_agent_new_makes_a_conforming_copy_and_never_overwrites(sandbox_image, tmp_path):
    from tests.test_cli import agentevo

    made = agentevo("agent", "new", str(tmp_path / "mine"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "mine" / "run.py").read_bytes() == (seed_agent_dir() / "run.py").read_bytes()
    assert not list((tmp_path / "mine").rglob("__pycache__"))
    checked = agentevo("agent", "check", str(tmp_path / "mine"))
    assert checked.returncode == 0, checked.stderr
    assert "honours the agent contract" in " ".join(checked.stderr.split())  # rich wraps long lines
    again = agentevo("agent", "new", str(tmp_path / "mine"), "--from", str(BYO))
    assert again.returncode == 2 and "not empty" in " ".join(again.stderr.split())
    assert (tmp_path / "mine" / "run.py").read_bytes() == (seed_agent_dir() / "run.py").read_bytes()
    no_agent = agentevo("agent", "new", str(tmp_path / "other"), "--from", str(tmp_path))
    assert no_agent.returncode == 2 and "no run.py" in " ".join(no_agent.stderr.split())
