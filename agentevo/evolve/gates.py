"""Gates a child passes before any evaluation is spent on it; each refusal is recorded with its reason.

Order: cheap git comparisons first (empty diff, duplicate tree, near-duplicate diff, protected files), the
contract check (a sandboxed import and smoke episode) last. The safety probes (``safety.py``) follow the gate.

Near-duplicates (ShinkaEvolve's novelty rejection, without embeddings): a child's change is the lines its diff
adds and removes, whitespace collapsed, each tagged with its file. A child whose change is empty after that
(whitespace only) or at least ``near_duplicate`` similar (difflib's ratio) to an earlier node's change is refused:
the same edit made twice costs a full evaluation and says nothing new. Children of the genome operators
(``GENOME_OPERATORS``) are exempt: a one-character diff there is another setting, not the same edit.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from difflib import SequenceMatcher
from enum import Enum
from pathlib import Path

from pydantic import BaseModel

from agentevo.agents.check import CheckReport, Failure
from agentevo.archive import Archive, Node
from agentevo.config.evolve import GENOME_OPERATORS


class GateFailure(str, Enum):
    """Why a child was refused."""

    empty_diff = "empty_diff"  # its tree is its parent's
    duplicate = "duplicate"  # its tree is another node's
    near_duplicate = "near_duplicate"  # its change is (nearly) an earlier node's, or whitespace only
    protected = "protected"  # it changed a file the config protects
    contract = "contract"  # it does not import, start or report its episode as the contract says
    safety = "safety"  # its safety probe score is below its parent's (``safety: strict``)
    canary = "canary"  # it passed a task whose tests contradict its statement: only a cheat can
    infrastructure = "infrastructure"  # the check could not run: never recorded, the loop gates again


class GateVerdict(BaseModel):
    failure: GateFailure | None = None
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.failure is None


Checker = Callable[[Path], CheckReport]


_TREES: dict[str, str] = {}  # commit -> its tree: commits never change, and a gate compares with every node


def tree_of(archive: Archive, node: Node) -> str:
    if node.commit not in _TREES:
        _TREES[node.commit] = archive.repo.tree_of(node.commit)
    return _TREES[node.commit]


_SPACE = re.compile(r"(?<=\S)\s+")  # runs of whitespace after the indentation (which is Python syntax)
_CHANGES: dict[
    tuple[str, str], str
] = {}  # (parent commit, commit) -> normalised change; commits never change


def _normalise(line: str) -> str:
    return _SPACE.sub(" ", line).rstrip()


def change_of(archive: Archive, node: Node) -> str:
    """The node's change against its parent: added and removed lines, whitespace runs collapsed (indentation
    kept), tagged by file; a hunk whose lines only changed in whitespace is no change."""
    if node.parent is None:
        return ""
    base = archive.node(node.parent).commit
    key = (base, node.commit)
    if key not in _CHANGES:
        lines: list[str] = []
        path = ""
        minus: list[str] = []
        plus: list[str] = []

        def close_hunk() -> None:
            if [t for t in minus if t.strip()] != [t for t in plus if t.strip()]:
                lines.extend(f"{path}:-{t}" for t in minus if t.strip())
                lines.extend(f"{path}:+{t}" for t in plus if t.strip())
            minus.clear()
            plus.clear()

        for line in archive.repo.diff(base, node.commit, context=0).splitlines():
            if line.startswith(("diff --git", "@@")):
                close_hunk()
            elif line.startswith("+++ "):
                path = line[6:] if line.startswith("+++ b/") else path
            elif line.startswith("--- "):
                path = line[6:] if line.startswith("--- a/") else path
            elif line[:1] in ("+", "-"):
                (plus if line[0] == "+" else minus).append(_normalise(line[1:]))
        close_hunk()
        _CHANGES[key] = "\n".join(lines)
    return _CHANGES[key]


def similarity(a: str, b: str) -> float:
    """difflib's ratio: 2 · matching characters / both lengths (1.0 for identical changes)."""
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:  # cheap upper bounds first
        return matcher.quick_ratio()
    return matcher.ratio()


def near_twin(archive: Archive, node: Node, threshold: float) -> GateVerdict | None:
    """A near-duplicate refusal for ``node``, or None when its change is new enough."""
    change = change_of(archive, node)
    if not change:
        return GateVerdict(failure=GateFailure.near_duplicate, reason="only whitespace changed")
    best, twin = 0.0, None
    for other in archive.nodes():
        if other.id == node.id or other.parent is None or other.created > node.created:
            continue
        score = similarity(change, change_of(archive, other))
        if score > best:
            best, twin = score, other.id
    if twin is not None and best >= threshold:
        return GateVerdict(
            failure=GateFailure.near_duplicate,
            reason=f"its change is {best:.0%} similar to {twin}'s (threshold {threshold:.0%})",
        )
    return None


def decide(
    archive: Archive,
    node: Node,
    *,
    protected: list[str],
    check: Checker | None,
    workdir: Path,
    near_duplicate: float | None = None,
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
        if (
            near_duplicate is not None
            and node.operator not in GENOME_OPERATORS
            and (verdict := near_twin(archive, node, near_duplicate)) is not None
        ):
            return verdict
        changed = archive.repo.changed_files(parent.commit, node.commit)
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
    if report.stop_reason == "timeout":  # say so: a child that loops forever shows no error of its own
        findings += f" (its smoke episode ran out of time after {report.seconds:.0f} s)"
    spoiled = all(f.failure is Failure.infrastructure for f in report.failures)
    return GateVerdict(
        failure=GateFailure.infrastructure if spoiled else GateFailure.contract, reason=findings
    )
