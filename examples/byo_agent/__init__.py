"""A bring-your-own agent: plan, then write, then test, as a LangGraph graph of its own.

It shares no code with the seed agent; all it takes from agentevo is the contract (``agentevo.contract``,
which the host places beside this package in the sandbox). Run it with
``agentevo run --agent examples/byo_agent`` and check it with ``agentevo agent check examples/byo_agent``.
"""
