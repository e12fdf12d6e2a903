"""A command's options make a new configuration for that command: the one loaded for every command (shared by
everything that runs in this process) is never written to."""

from __future__ import annotations

import signal

import pytest
from typer.testing import CliRunner

from agentevo.cli import common
from agentevo.cli.main import app


@pytest.mark.parametrize(
    "command",
    [["evolve", "--backbone", "openai"], ["run", "--backbone", "openai", "--memory"]],
    ids=["evolve", "run"],
)
def test_options_leave_the_shared_configuration_as_loaded(tmp_path, command):
    config = tmp_path / "agentevo.yaml"
    config.write_text(
        f"llm:\n  backbone: local\nmemory:\n  enabled: false\narchives_dir: {tmp_path / 'runs'}\n"
    )
    sigterm = signal.getsignal(signal.SIGTERM)  # `run` makes SIGTERM stop it like Ctrl-C
    try:
        # A suite that does not exist: the command stops before anything runs, after applying its options.
        result = CliRunner().invoke(app, ["--config", str(config), *command, "--suite", "no-such-suite"])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert result.exit_code != 0 and "no-such-suite" in result.output, result.output
    assert common.state.config is not None
    assert common.state.config.llm.backbone == "local" and common.state.config.memory.enabled is False
    assert not (tmp_path / "runs").exists()
