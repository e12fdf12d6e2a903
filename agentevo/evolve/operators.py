"""Operators: turn a parent (its files and failed episodes) into a child folder.

* ``reflect`` (GEPA): one LLM call edits only the declared text surfaces (``evolve.surfaces``), its answer held to
  a schema whose paths are those surfaces and whose searched lines are theirs.
* ``meta`` (HyperAgents): a designated coding agent, isolated in a sandbox whose workspace is a copy of the
  parent's code, implements a diagnosis; the child is what it leaves in the workspace.
* ``self`` (DGM): ``meta`` with the parent itself as the coding agent.

The loop, the selector and the evaluator never enter an operator's sandbox: only the parent's files do.
"""

from __future__ import annotations

import fnmatch
import io
import shutil
import tarfile
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentevo import contract
from agentevo.agents.episode import EpisodeBudget, run_isolated
from agentevo.agents.seed.genome import Genome
from agentevo.config.evolve import OperatorName
from agentevo.evolve.diagnose import diagnose
from agentevo.evolve.evidence import FailedEpisode
from agentevo.gateway import Gateway
from agentevo.gateway.client import HostLLM
from agentevo.llm.structured import StructuredOutputError
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
    operator: str | None = None  # the operator that made it, when a bandit chose among several


class Operator(Protocol):
    name: str

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        """Write the child into a new folder under ``workdir``; raise MutationFailed (or, for a
        failed model call, HostLLMError) when nothing was made."""
        ...


def copy_agent(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def prompts_read(folder: Path) -> set[str] | None:
    """The prompt files of an agent that declares a genome (``Genome.prompt_files``); None for one that does not,
    whose every surface may be read."""
    try:
        return set(Genome.model_validate_json((folder / contract.GENOME_FILE).read_text()).prompt_files())
    except (OSError, ValidationError):
        return None


REFLECT_SYSTEM = """You improve the prompts of a coding agent from the episodes it failed. Edit the text files
below so the agent avoids these failures on any task (do not mention specific tasks). Answer with a JSON object
{"edits": [...]}; each edit is either {"path": <a file below>, "search": <one line of it, copied exactly>,
"replace": <the new text for that line>} or {"path": <a file below>, "content": <the whole new file>}."""
MAX_EDITS = 2
# Sampled: a parent is reflected on more than once with the same failed episodes, and greedy decoding would answer
# the same edits each time (children refused as duplicates of their siblings).
REFLECT_TEMPERATURE = 0.7
# Answers asked per expansion: at T 0.7 a small model's next answer differs, so an answer that changes nothing (or
# does not parse) costs one more call instead of the whole expansion.
REFLECT_TRIES = 3
MAX_LINES = 60  # lines of a file offered to `search` (the first ones, distinct and non-empty)
LINE_CHARS = 300  # longer lines cannot be searched for (rewrite the file instead)
REPLACE_CHARS = 300
GROWTH_CHARS = 400  # how much longer than the current file a rewrite may be


class ReplaceEdit(BaseModel):
    """Replace one line of a surface (``search`` is the line as it is; the schema offers only real lines)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    search: str
    replace: str = Field(max_length=REPLACE_CHARS)


class RewriteEdit(BaseModel):
    """Rewrite a whole surface."""

    model_config = ConfigDict(extra="forbid")

    path: str
    content: str


class Edits(BaseModel):
    """A reflection's answer: the edits to make, in order."""

    edits: list[ReplaceEdit | RewriteEdit] = Field(min_length=1, max_length=MAX_EDITS)


def _lines(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip() and len(line) <= LINE_CHARS]
    return list(dict.fromkeys(lines))[:MAX_LINES]


def edits_schema(files: dict[str, str]) -> dict[str, Any]:
    """The JSON schema of :class:`Edits` for these surfaces: each path from the enum of the declared surfaces,
    each ``search`` from the enum of that file's own lines, each text bounded, so that every edit applies."""
    branches = []
    for path, text in files.items():
        fixed = {"path": {"enum": [path]}}
        if _lines(text):
            replace = {
                "search": {"enum": _lines(text)},
                "replace": {"type": "string", "maxLength": REPLACE_CHARS},
            }
            branches.append(_object({**fixed, **replace}))
        branches.append(
            _object({**fixed, "content": {"type": "string", "maxLength": len(text) + GROWTH_CHARS}})
        )
    item = branches[0] if len(branches) == 1 else {"anyOf": branches}
    edits = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_EDITS}
    return _object({"edits": edits})


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def apply_edits(edits: Edits, files: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The surfaces' new texts (changed ones only) and why each edit that changed nothing was dropped."""
    new: dict[str, str] = {}
    dropped: list[str] = []
    for edit in edits.edits:
        current = new.get(edit.path, files.get(edit.path))
        if current is None:
            dropped.append(f"{ReflectFailure.outside_surfaces.value}: {edit.path}")
        elif isinstance(edit, ReplaceEdit) and edit.search not in current:
            dropped.append(f"{ReflectFailure.search_not_found.value}: {edit.search[:80]!r} in {edit.path}")
        else:
            text = (
                edit.content
                if isinstance(edit, RewriteEdit)
                else current.replace(edit.search, edit.replace, 1)
            )
            if tidy(text) == tidy(current):
                dropped.append(f"{ReflectFailure.no_change.value}: {edit.path}")
            else:
                new[edit.path] = tidy(text)
    return new, dropped


def tidy(text: str) -> str:
    """The text as a surface is written: no trailing spaces, one final newline (an edit that only changes
    those is no change, and would make a child refused as a near-duplicate of its sibling)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


class ReflectFailure(StrEnum):
    """Why a reflection made no child (besides a StructuredFailure of its answer)."""

    outside_surfaces = "outside_surfaces"  # an edit named a file that is no declared surface
    search_not_found = "search_not_found"  # a replace edit's line is not in its file
    no_change = "no_change"  # the edit leaves the file as it was


class Reflect:
    """GEPA's reflective mutation: the mutating model edits only files matching ``surfaces``, its answer held to
    :func:`edits_schema`. A reflection that changes nothing fails with the named reason (MutationFailed): no child
    is made to be refused as an empty diff."""

    name = OperatorName.reflect.value

    def __init__(self, mutator: HostLLM, surfaces: list[str]) -> None:
        self.mutator, self.surfaces = mutator, surfaces

    def _surfaces(self, folder: Path) -> list[str]:
        """The files matching the surface globs that the agent reads: an edit of a prompt section its genome leaves
        off would make a child that behaves as its parent does."""
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        read = prompts_read(folder)
        return [
            f
            for f in files
            if any(fnmatch.fnmatch(f, glob) for glob in self.surfaces) and (read is None or f in read)
        ]

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        surfaces = self._surfaces(parent.folder)
        if not surfaces:
            raise MutationFailed(
                f"{parent.id} reads no text surface matching {self.surfaces}; use operator meta"
            )
        files = {f: (parent.folder / f).read_text() for f in surfaces}
        new = self._changes(parent, files)
        child = copy_agent(parent.folder, workdir / f"child-{uuid.uuid4().hex[:8]}")
        for path, text in new.items():
            (child / path).write_text(text)
        return Proposal(folder=child, change=f"reflect: rewrote {', '.join(new)}")

    def _changes(self, parent: Parent, files: dict[str, str]) -> dict[str, str]:
        """The first of ``REFLECT_TRIES`` answers that changes a file; failing that, why each one did not."""
        why: list[str] = []
        for _ in range(REFLECT_TRIES):
            try:
                new, dropped = apply_edits(self._ask(parent, files), files)
            except MutationFailed as exc:
                new, dropped = {}, [str(exc)]
            if new:
                return new
            why.append("; ".join(dropped))
        raise MutationFailed(f"reflect changed no file in {REFLECT_TRIES} answers: {' | '.join(why)}")

    def _ask(self, parent: Parent, files: dict[str, str]) -> Edits:
        current = "\n\n".join(f"=== FILE: {f} ===\n{text}\n=== END ===" for f, text in files.items())
        episodes = (
            "\n\n".join(f.render() for f in parent.failed) or "(none failed: make the agent more reliable)"
        )
        try:
            return self.mutator.ask_structured(
                REFLECT_SYSTEM,
                f"# Files\n{current}\n\n# Failed episodes\n{episodes}",
                Edits,
                schema=edits_schema(files),
                temperature=REFLECT_TEMPERATURE,
                agent_id=parent.id,
                purpose="reflect",
            )
        except StructuredOutputError as exc:
            raise MutationFailed(f"reflect got no edits: {exc}") from None


META_TASK = """The workspace holds the code of a coding agent (a Python package; AGENT.md explains it).
Improve it by making this change, editing the files in place:

{diagnosis}

Keep it a working package: `run.py` must still run one episode and print its result line. Call submit when done."""


class Meta:
    """A coding agent edits a copy of the parent's code in a sandbox, from a diagnosis.

    ``coder`` is the coding agent's folder; None makes this ``self`` (the parent edits itself).
    """

    def __init__(
        self,
        mutator: HostLLM,
        gateway: Gateway,
        *,
        coder: Path | None,
        sandbox: SandboxConfig | None,
        steps: int,
        time_limit: float,
    ) -> None:
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
            id=f"evolve/{parent.id}",
            suite="evolve",
            instructions=META_TASK.format(diagnosis=diagnosis),
            files=files,
            solution_file="run.py",
            tests=["pass"],
        )
        outcome = run_isolated(
            task,
            self.coder or parent.folder,
            self.gateway,
            sandbox_config=self.sandbox,
            budget=EpisodeBudget(max_steps=self.steps),
            agent_id=f"{self.name}:{parent.id}",
            episode_id=f"{self.name}-{parent.id}-{uuid.uuid4().hex[:8]}",
            time_limit=self.time_limit,
        )
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
