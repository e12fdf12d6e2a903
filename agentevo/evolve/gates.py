"""Gates a child passes before any evaluation is spent on it; each refusal is recorded with its reason.

Order: cheap git comparisons first (empty diff, duplicate tree, protected files), the contract check (a
sandboxed import and smoke episode) last.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from pydantic import BaseModel

from agentevo.agents.check import CheckReport, Failure
from agentevo.archive import Archive, Node


class GateFailure(str, Enum):
    """Why a child was refused."""

    empty_diff = "empty_diff"  # its tree is its parent's
    duplicate = "duplicate"  # its tree is another node's
    protected = "protected"  # it changed a file the config protects
    contract = "contract"  # it does not import, start or report its episode as the contract says
    infrastructure = "infrastructure"  # the check could not run: never recorded, the loop gates again


class GateVerdict(BaseModel):
    failure: GateFailure | None = None
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.failure is None


Checker = Callable[[Path], CheckReport]


def tree_of(archive: Archive, node: Node) -> str:
    return archive.repo.repo.git.rev_parse(f"{node.commit}^{{tree}}")


def decide(
    archive: Archive, node: Node, *, protected: list[str], check: Checker | None, workdir: Path
) -> GateVerdict:
    """The gate verdict for ``node`` (a child; the seed only meets the contract check)."""
    tree = tree_of(archive, node)
    if node.parent is not None:
        parent = archive.node(node.parent)
        if tree == tree_of(archive, parent):
            return GateVerdict(failure=GateFailure.empty_diff, reason=f"the child's files are {parent.id}'s")
        twin = next(
            (
                n.id
                for n in archive.nodes()
                if n.id != node.id and n.created <= node.created and tree_of(archive, n) == tree
            ),
            None,
        )
        if twin is not None:
            return GateVerdict(failure=GateFailure.duplicate, reason=f"the same files as {twin}")
        changed = archive.repo.repo.git.diff(parent.commit, node.commit, "--name-only").splitlines()
        touched = sorted(f for f in changed if any(fnmatch.fnmatch(f, glob) for glob in protected))
        if touched:
            return GateVerdict(
                failure=GateFailure.protected, reason=f"changed protected {', '.join(touched)}"
            )
    if check is None:
        return GateVerdict()
    report = check(archive.export(node.id, workdir / f"check-{node.id}"))
    if report.passed:
        return GateVerdict()
    findings = "; ".join(f"{f.failure.value}: {f.reason}" for f in report.failures)
    spoiled = all(f.failure is Failure.infrastructure for f in report.failures)
    return GateVerdict(
        failure=GateFailure.infrastructure if spoiled else GateFailure.contract, reason=findings
    )
