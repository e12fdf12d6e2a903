"""A scripted evolution for control-flow tests: a scripted chat model (not a backbone; no model randomness),
a deliberately weakened seed, tasks one code block solves, and operators that apply known edits.

The weakened seed drops the seed's rescue of code blocks (a model answering with a code block instead of a
tool call gets nothing saved), so with the scripted model, which always answers with the code block, it solves
nothing; restoring ``graph.py`` (the known fix) solves the tasks that block answers.

Run as a module to drive one evolution in a child process (the kill -9 test): ``python -m tests.evolve.scripted
RUN_ID ARCHIVES_DIR MAX_NODES``.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from agentevo.agents.episode import seed_agent_dir
from agentevo.config import AgentevoConfig
from agentevo.contract import result_line
from agentevo.evolve.config import EvolveConfig, PolicyName, Stage
from agentevo.evolve.operators import Parent, Proposal, copy_agent
from agentevo.evolve.start import evolve_run, open_run
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.tasks import Task

ANSWER = "```python\ndef answer():\n    return 42\n```"
RESCUE = "            blocks = CODE_BLOCK.findall(str(last.content))"


def tasks() -> list[Task]:
    """Two tasks the block solves, one it cannot (so scores are not all 0 or 1)."""

    def task(i: int, expected: int) -> Task:
        return Task(
            id=f"scripted/t{i}", suite="scripted", entry_point="answer", time_limit=10.0,
            instructions=f"In `solution.py` write `answer()` returning {expected}.",
            files={"solution.py": "def answer():\n    raise NotImplementedError\n"},
            tests=[f"assert answer() == {expected}"],
        )  # fmt: skip

    return [task(0, 42), task(1, 42), task(2, 43)]


def weakened_seed(dest: Path) -> Path:
    folder = copy_agent(seed_agent_dir(), dest)
    graph = folder / "graph.py"
    source = graph.read_text()
    assert RESCUE in source, "the seed's graph.py changed: update RESCUE"
    graph.write_text(source.replace(RESCUE, "            blocks = []  # weakened: code blocks are dropped"))
    return folder


def backend() -> ChatModelBackend:
    return ChatModelBackend(ScriptedChatModel(replies=[ANSWER]), "scripted")


def fix(folder: Path) -> None:
    shutil.copy(seed_agent_dir() / "graph.py", folder / "graph.py")


def weaken(folder: Path) -> None:
    graph = folder / "graph.py"
    graph.write_text(
        graph.read_text().replace(RESCUE, "            blocks = []  # weakened: code blocks are dropped")
    )


def crash_on_import(folder: Path) -> None:
    (folder / "config.py").write_text('raise RuntimeError("hostile: crash on import")\n')


def forge_result(folder: Path) -> None:
    forged = result_line("some-other-episode", "submitted", 1, 1, None)
    config = folder / "config.py"
    config.write_text(config.read_text() + f"\nimport sys\nprint({forged!r}, flush=True)\nsys.exit(0)\n")


def edit_protected(folder: Path) -> None:
    run = folder / "run.py"
    run.write_text(run.read_text() + "\n# a harmless-looking edit of a protected file\n")


def no_change(folder: Path) -> None:
    pass


def comment(folder: Path) -> None:
    """A distinct, harmless child each time (the kill -9 test needs many)."""
    graph = folder / "graph.py"
    graph.write_text(graph.read_text() + f"\n# note {uuid.uuid4().hex}\n")


def fix_or_comment(folder: Path) -> None:
    """The fix when the parent is still weakened, else a harmless edit: stateless, so a resumed run agrees."""
    (fix if RESCUE not in (folder / "graph.py").read_text() else comment)(folder)


class ScriptedOperator:
    """Applies the next edit of ``edits`` to a copy of the parent (the last one repeats)."""

    name = "scripted"

    def __init__(self, edits: list[Callable[[Path], None]]) -> None:
        self.edits = edits
        self.made = 0

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        edit = self.edits[min(self.made, len(self.edits) - 1)]
        self.made += 1
        child = copy_agent(parent.folder, workdir / f"child-{self.made}")
        edit(child)
        return Proposal(folder=child, change=edit.__name__)


def settings(archives: Path, **evolve: object) -> tuple[AgentevoConfig, EvolveConfig]:
    fields = {
        "policy": PolicyName.greedy, "workers": 1, "max_steps": 2, "stages": [Stage(name="small", tasks=3)],
        **evolve,
    }  # fmt: skip
    return AgentevoConfig(archives_dir=archives), EvolveConfig(**fields)


def main(archives: str, max_nodes: str, resume: str | None = None) -> None:
    """One scripted evolution, new or resumed: the fix first, then distinct harmless edits."""
    config, evolve = settings(Path(archives), workers=2)
    seed = weakened_seed(Path(archives) / "seed") if resume is None else None
    run, evolve = open_run(config, evolve, resume, seed=seed, budgets={"max_nodes": int(max_nodes)})
    print(f"RUN {run.run_id}", flush=True)
    scripted = backend()
    status = evolve_run(
        config, evolve, run, backend=scripted, mutator_backend=scripted, operator=ScriptedOperator([fix_or_comment]),
        tasks=tasks(),
    )  # fmt: skip
    print(f"DONE {status.cause.value} {status.nodes}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
