"""Keep one answer among k: run each on the statement's examples in the sandbox, and group answers that agree.

The kept answer passes the most examples; among those, the one the most answers agree with (equal outputs on the
probes: the examples' calls, or inputs the model wrote when the statement shows none, as CodeT does); then the
earliest. Each candidate runs in a process of its own (``run_candidate.py``), so none can take the agent down.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .workspace import Workspace

RUNNER = Path(__file__).resolve().parent / "run_candidate.py"
SCRATCH = "/tmp/agent-candidates"  # outside the workspace: the evaluator never sees these files
CHECK_SECONDS = 2.0  # per check or probe; the whole run gets a little more than all of them


@dataclass(frozen=True)
class Trial:
    """What one candidate did: whether it defines the entry point, each check, each probe's output."""

    defines: bool
    passed: tuple[bool, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def agrees_on(self) -> tuple[str, ...] | None:
        """Its outputs, when they say something (not every probe an error)."""
        useful = self.outputs and not all(o.startswith("error: ") for o in self.outputs)
        return self.outputs if useful else None


def run_trial(
    workspace: Workspace, source: str, entry_point: str, checks: list[str], probes: list[str]
) -> Trial:
    """Run ``source`` on ``checks`` (statements) and ``probes`` (expressions) in a fresh process."""
    name = f"{SCRATCH}/{uuid.uuid4().hex[:12]}"
    spec = {"source": source, "entry_point": entry_point, "checks": checks, "probes": probes}
    workspace.write(f"{name}.json", json.dumps({**spec, "seconds": CHECK_SECONDS}))
    workspace.write(f"{name}.py", RUNNER.read_text())
    limit = CHECK_SECONDS * (len(checks) + len(probes) + 1) + 5
    _, output = workspace.run(
        f"cd {SCRATCH} && python3 {shlex.quote(name)}.py {shlex.quote(name)}.json", limit
    )
    marked = [line for line in output.splitlines() if line.startswith("CANDIDATE-RESULT ")]
    if not marked:
        return Trial(defines=False)
    data = json.loads(marked[-1].partition(" ")[2])
    return Trial(data["defines"], tuple(data["passed"]), tuple(data["outputs"]))


def choose(trials: list[Trial], weights: list[int]) -> int:
    """The index of the answer to keep; ``weights[i]``: how many samples gave answer ``i``."""
    groups: Counter[tuple[str, ...]] = Counter()
    for trial, weight in zip(trials, weights, strict=True):
        if trial.defines and trial.agrees_on is not None:
            groups[trial.agrees_on] += weight

    def rank(i: int) -> tuple[bool, int, int, int]:
        trial = trials[i]
        agreeing = groups[trial.agrees_on] if trial.agrees_on is not None else weights[i]
        return trial.defines, sum(trial.passed), agreeing, -i

    return max(range(len(trials)), key=rank)


def first_failing(workspace: Workspace, path: str, entry_point: str, checks: list[str]) -> str | None:
    """The first of ``checks`` the file at ``path`` fails (all of them when it is missing), or None."""
    try:
        source = workspace.read(path)
    except OSError:
        source = ""
    trial = run_trial(workspace, source, entry_point, checks, [])
    passed = trial.passed or (False,) * len(checks)  # a run that reported nothing passed nothing
    return next((check for check, ok in zip(checks, passed, strict=True) if not ok), None)
