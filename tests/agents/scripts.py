"""Scripted tool sequences for the agent tests (a scripted chat model drives the graph)."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage

from agentevo.agents.episode import seed_agent_dir
from agentevo.agents.seed.genome import Strategy, dump_genome, load_genome
from agentevo.contract import GENOME_FILE
from agentevo.evolve.operators import copy_agent
from agentevo.tasks import Task

ADD_TASK = Task(
    id="test/add",
    suite="test",
    instructions="Write a function add(a, b) in solution.py that returns a + b.",
    entry_point="add",
    tests=["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(10, 5) == 15"],
)


def call(name: str, n: int, **args) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{n}"}])


SOLVE_ADD = [
    call("create", 1, path="solution.py", content="def add(a, b):\n    return a + b\n"),
    call("bash", 2, command="python -c 'from solution import add; print(add(2, 3))'"),
    call("view", 3, path="solution.py"),
    call("submit", 4, summary="done"),
]
WRONG_ADD = [
    call("create", 1, path="solution.py", content="def add(a, b):\n    return a - b\n"),
    call("submit", 2),
]
NEVER_SUBMITS = [call("bash", 1, command="echo thinking")]


def loop_seed(dest: Path) -> Path:
    """A copy of the seed whose genome always takes the tool loop (``strategy: loop``), for tests of the loop's
    control flow on one-function tasks (the seed answers those directly)."""
    folder = copy_agent(seed_agent_dir(), dest)
    genome = load_genome(folder).model_copy(update={"strategy": Strategy.loop})
    (folder / GENOME_FILE).write_text(dump_genome(genome))
    return folder
