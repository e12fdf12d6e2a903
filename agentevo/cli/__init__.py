"""The ``agentevo`` command line."""
