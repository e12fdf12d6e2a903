"""Operators: turn a parent (its files and failed episodes) into a child folder.

* ``reflect`` (GEPA): one LLM call rewrites only the declared text surfaces (``evolve.surfaces``).
* ``meta`` (HyperAgents): a designated coding agent, isolated in a sandbox whose workspace is a copy of the
  parent's code, implements a diagnosis; the child is what it leaves in the workspace.
* ``self`` (DGM): ``meta`` with the parent itself as the coding agent.

The loop, the selector and the evaluator never enter an operator's sandbox: only the parent's files do.
"""

from __future__ import annotations

import fnmatch
import io
import re
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from agentevo import contract
from agentevo.agents.episode import EpisodeBudget, run_isolated
from agentevo.evolve.config import OperatorName
from agentevo.evolve.diagnose import diagnose
from agentevo.evolve.evidence import FailedEpisode
from agentevo.gateway import Gateway
from agentevo.gateway.client import HostLLM
from agentevo.sandbox import SandboxConfig
from agentevo.tasks import Task


class MutationFailed(RuntimeError):
    """The operator made nothing usable (no edit in the reply, no folder back); the expansion is abandoned."""


class Parent(BaseModel):
    """What an operator gets: the parent's id, a private copy of its files, and its failed episodes."""

    id: str
    folder: Path
    failed: list[FailedEpisode]


class Proposal(BaseModel):
    """An operator's child: its folder and the change it was asked to make (recorded on the node)."""

    folder: Path
    change: str
    mutator: str | None = None  # the backbone that made it, when a bandit chose among several


class Operator(Protocol):
    name: str

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        """Write the child into a new folder under ``workdir``; raise MutationFailed (or, for a
        failed model call, HostLLMError) when nothing was made."""
        ...


def copy_agent(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


REFLECT_SYSTEM = """You improve the prompts of a coding agent from the episodes it failed. Rewrite the text
files below so the agent avoids these failures on any task (do not mention specific tasks). Reply with every
file you change as:
=== FILE: <path> ===
<the whole new content>
=== END ==="""
FILE_BLOCK = re.compile(r"=== FILE: (.+?) ===\n(.*?)\n=== END ===", re.DOTALL)


class Reflect:
    """GEPA's reflective mutation: the mutating model rewrites only files matching ``surfaces``."""

    name = OperatorName.reflect.value

    def __init__(self, mutator: HostLLM, surfaces: list[str]) -> None:
        self.mutator, self.surfaces = mutator, surfaces

    def _surfaces(self, folder: Path) -> list[str]:
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        return [f for f in files if any(fnmatch.fnmatch(f, glob) for glob in self.surfaces)]

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        surfaces = self._surfaces(parent.folder)
        if not surfaces:
            raise MutationFailed(
                f"{parent.id} declares no text surface matching {self.surfaces}; use operator meta"
            )
        current = "\n\n".join(
            f"=== FILE: {f} ===\n{(parent.folder / f).read_text()}\n=== END ===" for f in surfaces
        )
        episodes = (
            "\n\n".join(f.render() for f in parent.failed) or "(none failed: make the agent more reliable)"
        )
        reply = self.mutator.ask(
            REFLECT_SYSTEM,
            f"# Files\n{current}\n\n# Failed episodes\n{episodes}",
            agent_id=parent.id,
            purpose="reflect",
        )
        child = copy_agent(parent.folder, workdir / f"child-{uuid.uuid4().hex[:8]}")
        changed = [
            (path.strip(), text) for path, text in FILE_BLOCK.findall(reply) if path.strip() in surfaces
        ]
        for path, text in changed:
            (child / path).write_text(text.strip() + "\n")
        return Proposal(
            folder=child, change=f"reflect: rewrote {', '.join(p for p, _ in changed) or 'nothing'}"
        )


META_TASK = """The workspace holds the code of a coding agent (a Python package; AGENT.md explains it).
Improve it by making this change, editing the files in place:

{diagnosis}

Keep it a working package: `run.py` must still run one episode and print its result line. Call submit when done."""


class Meta:
    """A coding agent edits a copy of the parent's code in a sandbox, from a diagnosis.

    ``coder`` is the coding agent's folder; None makes this ``self`` (the parent edits itself).
    """

    def __init__(
        self, mutator: HostLLM, gateway: Gateway, *, coder: Path | None, sandbox: SandboxConfig | None,
        steps: int, time_limit: float,
    ) -> None:  # fmt: skip
        self.mutator, self.gateway, self.coder, self.sandbox = mutator, gateway, coder, sandbox
        self.steps, self.time_limit = steps, time_limit
        self.name = OperatorName.meta.value if coder is not None else OperatorName.self.value

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        diagnosis = diagnose(self.mutator, parent.id, parent.folder, parent.failed)
        files = {
            str(p.relative_to(parent.folder)): p.read_text()
            for p in sorted(parent.folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }
        task = Task(
            id=f"evolve/{parent.id}", suite="evolve", instructions=META_TASK.format(diagnosis=diagnosis),
            files=files, solution_file="run.py", tests=["pass"],
        )  # fmt: skip
        outcome = run_isolated(
            task, self.coder or parent.folder, self.gateway, sandbox_config=self.sandbox,
            budget=EpisodeBudget(max_steps=self.steps), agent_id=f"{self.name}:{parent.id}",
            episode_id=f"{self.name}-{parent.id}-{uuid.uuid4().hex[:8]}", time_limit=self.time_limit,
        )  # fmt: skip
        if not outcome.workspace_tar:
            raise MutationFailed(
                f"the {self.name} step left no workspace ({outcome.stop_reason.value}: {outcome.error})"
            )
        unpacked = workdir / f"child-{uuid.uuid4().hex[:8]}"
        with tarfile.open(fileobj=io.BytesIO(outcome.workspace_tar)) as tar:
            tar.extractall(unpacked, filter="data")  # the tar's top entry is the workspace folder itself
        child = unpacked / Path(contract.WORKSPACE).name
        if not child.is_dir():
            raise MutationFailed(f"the {self.name} step's workspace came back without its folder")
        return Proposal(folder=child, change=f"{self.name}: {diagnosis}")
