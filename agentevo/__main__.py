"""``python -m agentevo`` is the ``agentevo`` command."""

from agentevo.cli.main import app

app(prog_name="agentevo")
