"""Conformance with the agent contract: does an agent folder import, start, and report its episode?

``check_agent`` is what ``agentevo agent check PATH`` prints and what evolution's gates call: the folder
is inspected on the host (no agent code runs here), then imported and run for one smoke episode inside a
sandbox, with a scripted model behind a real gateway. Solving the smoke task is not required; honouring
the contract is.
"""

from __future__ import annotations

import tempfile
import time
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

from agentevo import contract
from agentevo.agents.episode import (
    EpisodeBudget,
    EpisodeOutcome,
    agent_sandbox_config,
    put_host_modules,
    run_isolated,
)
from agentevo.contract import ResultStatus
from agentevo.files import default_cache_dir
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.sandbox import SandboxConfig, start_sandbox
from agentevo.sandbox.errors import ImageBuildError
from agentevo.tasks import Task

SMOKE_TASK = Task(
    id="check/smoke",
    suite="check",
    entry_point="answer",
    time_limit=10.0,
    instructions="In the file `solution.py`, write a function `answer()` that returns the integer 42.",
    files={"solution.py": "def answer():\n    raise NotImplementedError\n"},
    tests=["assert answer() == 42"],
)
# Plain text with a code block: an agent with tools, or without, gets something it can act on.
SMOKE_REPLIES = ["```python\ndef answer():\n    return 42\n```", "Done: solution.py returns 42."]
SMOKE_STEPS = 3


class Failure(str, Enum):
    """Why an agent folder does not conform."""

    not_a_package = "not_a_package"
    no_entry = "no_entry"
    requirements = "requirements"  # its requirements.txt does not install into the sandbox image
    does_not_import = "does_not_import"
    crashes_at_start = "crashes_at_start"
    no_result_line = "no_result_line"
    foreign_result_line = "foreign_result_line"
    malformed_result_line = "malformed_result_line"
    infrastructure = (
        "infrastructure"  # the check itself could not run (Docker, gateway): not the agent's fault
    )


class Finding(BaseModel):
    failure: Failure
    reason: str


class CheckReport(BaseModel):
    """The outcome of one conformance check."""

    agent: str
    failures: list[Finding] = Field(default_factory=list)
    stop_reason: str | None = Field(None, description="How the smoke episode ended, when it ran.")
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def check_agent(
    path: Path,
    *,
    sandbox_config: SandboxConfig | None = None,
    time_limit: float = 180.0,
    cache_dir: Path | None = None,
    import_timeout: float = 60.0,
) -> CheckReport:
    """Check the agent folder ``path`` against the contract; every failure comes with its reason.
    ``import_timeout`` bounds the import (raise it on a slow or busy machine: evolution passes its own).

    An agent that declares extra requirements is checked on its derived image (built first if missing).
    """
    started = time.monotonic()
    report = CheckReport(agent=str(path))
    report.failures = _layout(Path(path))
    if not report.failures:
        try:
            sandbox_config = agent_sandbox_config(
                sandbox_config or SandboxConfig(), Path(path), Path(cache_dir or default_cache_dir())
            )
        except ImageBuildError as exc:
            report.failures = [Finding(failure=Failure.requirements, reason=str(exc)[:3000])]
    if not report.failures:
        report.failures = _imports(Path(path), sandbox_config, import_timeout)
    if not report.failures:
        outcome = _smoke(Path(path), sandbox_config, time_limit)
        report.stop_reason = outcome.stop_reason.value
        report.failures = _episode_findings(outcome)
    report.seconds = time.monotonic() - started
    return report


def _layout(path: Path) -> list[Finding]:
    if not path.is_dir() or not (path / "__init__.py").is_file():
        return [
            Finding(failure=Failure.not_a_package, reason=f"{path} is not a Python package (no __init__.py)")
        ]
    if not (path / "run.py").is_file():
        entry = f"python -m {contract.ENTRY_MODULE}"
        return [
            Finding(
                failure=Failure.no_entry, reason=f"{path} has no run.py: the contract's entry is `{entry}`"
            )
        ]
    return []


def _imports(path: Path, sandbox_config: SandboxConfig | None, timeout: float = 60.0) -> list[Finding]:
    """Import the entry module in a sandbox (import-time code is the agent's: it never runs on the host)."""
    with start_sandbox(sandbox_config) as sandbox:
        sandbox.put_dir(path, contract.AGENT_DIR)
        put_host_modules(sandbox)
        result = sandbox.exec(
            f"cd {contract.PACKAGE_ROOT} && python -c 'import {contract.ENTRY_MODULE}'", timeout=timeout
        )
    if result.exit_code == 0:
        return []
    return [
        Finding(
            failure=Failure.does_not_import,
            reason=_last_line(result.output) or f"exit code {result.exit_code}",
        )
    ]


def _smoke(path: Path, sandbox_config: SandboxConfig | None, time_limit: float) -> EpisodeOutcome:
    backend = ChatModelBackend(ScriptedChatModel(replies=SMOKE_REPLIES), "scripted")
    with (
        tempfile.TemporaryDirectory() as tmp,
        Gateway(backend, run_dir=Path(tmp), run_id="agent-check") as gateway,
    ):
        return run_isolated(
            SMOKE_TASK,
            path,
            gateway,
            sandbox_config=sandbox_config,
            budget=EpisodeBudget(max_steps=SMOKE_STEPS),
            agent_id="check",
            episode_id=f"check-{int(time.time() * 1000)}",
            time_limit=time_limit,
        )


def _episode_findings(outcome: EpisodeOutcome) -> list[Finding]:
    if outcome.stop_reason.infrastructure:
        return [Finding(failure=Failure.infrastructure, reason=outcome.error or outcome.stop_reason.value)]
    if outcome.result is ResultStatus.ok:
        return []
    tail = _last_line(outcome.log_tail)
    if outcome.result is ResultStatus.missing and outcome.calls == 0 and outcome.exit_code not in (0, None):
        return [Finding(failure=Failure.crashes_at_start, reason=f"exit code {outcome.exit_code}: {tail}")]
    failure = {
        ResultStatus.missing: Failure.no_result_line,
        ResultStatus.foreign: Failure.foreign_result_line,
        ResultStatus.malformed: Failure.malformed_result_line,
    }[outcome.result]
    return [Finding(failure=failure, reason=outcome.error or failure.value)]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
