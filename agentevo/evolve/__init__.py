"""Evolution of agents: parent selection, operators that make children, gates, staged evaluation, the loop.

Its configuration section is :mod:`agentevo.config.evolve` (the root configuration owns it, since this package
reads the whole configuration).
"""
