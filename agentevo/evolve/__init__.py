"""Evolution of agents: parent selection, operators that make children, gates, staged evaluation, the loop.

Kept free of imports so that ``agentevo.config`` can read :mod:`agentevo.evolve.config` without pulling in
Docker, the gateway or LangChain.
"""
