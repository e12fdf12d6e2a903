"""Running one isolated episode: the agent's package is copied into a sandbox and runs there, reaching the LLM
only through the gateway socket. Evolved (untrusted) agent code always runs this way, and the host talks to it
only through ``agentevo.contract`` (it never imports an agent's package; SDK mode is ``agents/sdk.py``).

The result is the final workspace (as a tar stream) for the evaluator, plus what the episode cost; the
verdict is never the agent's to give.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from agentevo import contract
from agentevo.contract import AgentResult, EpisodeArgs, ResultStatus, StopReason, blame
from agentevo.files import default_cache_dir
from agentevo.gateway import Budget, EpisodeAccess, Usage
from agentevo.sandbox import RunningSandbox, SandboxConfig, SandboxDied, SandboxUnavailable, start_sandbox
from agentevo.sandbox.derived import with_requirements
from agentevo.sandbox.errors import ImageBuildError

# What every agent sandbox holds besides the agent: the contract package (its core, and the browser tools that web
# agents act with; standard library only). The agent reads these copies; the host keeps its own.
_CONTRACT_DIR = Path(contract.__file__).parent
HOST_MODULES = {
    f"{contract.CONTRACT_COPY}/{name}": (_CONTRACT_DIR / name).read_bytes() for name in contract.FILES
}
# Web agents archived before the browser tools joined the contract import them from their old place.
HOST_MODULES[f"{contract.PACKAGE_ROOT}/agentevo/web/tools.py"] = HOST_MODULES[
    f"{contract.CONTRACT_COPY}/browser.py"
]


def put_host_modules(sandbox: RunningSandbox) -> None:
    """Write ``HOST_MODULES`` into ``sandbox``, where the agent's package imports them from."""
    for path, data in HOST_MODULES.items():
        sandbox.write_file(path, data)


def agent_sandbox_config(config: SandboxConfig, agent_dir: Path, cache: Path) -> SandboxConfig:
    """Where ``agent_dir``'s episodes run: ``config``, on a derived image when the folder declares requirements
    (``contract.REQUIREMENTS_FILE``). Raises ImageBuildError when they do not install."""
    path = Path(agent_dir) / contract.REQUIREMENTS_FILE
    text = path.read_bytes() if path.is_file() else b""
    if not any(line.split(b"#", 1)[0].strip() for line in text.splitlines()):
        return config
    return with_requirements(config, text, cache)


def seed_agent_dir() -> Path:
    """The seed agent's package folder (what evolution starts from)."""
    return Path(__file__).resolve().parent / "seed"


def web_seed_agent_dir() -> Path:
    """The seed web agent's package folder (never imported by the host)."""
    return Path(__file__).resolve().parent / "web_seed"


# The machine's failures, whatever the sandbox provider: no sandbox could be had, or it died under the agent.
SANDBOX_FAULTS = (SandboxUnavailable, SandboxDied)


@dataclass(frozen=True)
class SandboxExtras:
    """What a task kind adds to the agent's sandbox beyond the task's files: host paths bound in (a web episode's
    browser socket) and environment for the agent."""

    binds: Mapping[Path, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


class EpisodeBudget(BaseModel):
    """What one isolated episode may spend. The gateway enforces it whatever the agent's code says."""

    max_steps: int = Field(12, ge=1, description="Model calls (one per step) before the episode stops.")
    max_tokens: int = Field(
        20_000, ge=1, description="Tokens (prompt + completion) before the episode stops."
    )


class EpisodeOutcome(BaseModel):
    """What an episode produced. ``tokens`` and ``calls`` come from the gateway in isolated mode."""

    task_id: str
    mode: str
    stop_reason: StopReason
    steps: int = 0
    tokens: int = 0
    calls: int = 0
    seconds: float = 0.0
    error: str | None = None
    log_tail: str = ""
    workspace_tar: bytes = Field(b"", exclude=True, repr=False)

    retries: int = Field(0, description="Model calls the gateway had to send again after a backbone fault.")
    result: ResultStatus = Field(
        ResultStatus.ok, description="What the host found of the agent's result line."
    )
    exit_code: int | None = Field(None, description="The agent process's exit code (isolated mode).")

    @property
    def submitted(self) -> bool:
        return self.stop_reason is StopReason.submitted


def _stop_reason(reported: AgentResult, access: EpisodeAccess, timed_out: bool) -> StopReason:
    """The host's verdict on how the episode ended: the gateway's account outranks the agent's."""
    claimed = reported.stop_reason if reported.status is ResultStatus.ok else StopReason.agent_crash
    if claimed is StopReason.submitted:
        return claimed  # it finished, whatever the machine did meanwhile
    fault = _infrastructure_fault(access, timed_out)
    if fault is not None:
        return fault
    if timed_out:
        return StopReason.timeout
    if claimed is StopReason.llm_error:  # a refusal by the gateway outranks whatever the agent says happened
        return _refusal(access) or StopReason.agent_crash
    return claimed


def _refusal(access: EpisodeAccess) -> StopReason | None:
    """Which of its budgets the gateway refused the episode's calls for, if any."""
    budget, usage = access.budget, access.usage
    if budget.max_calls is not None and usage.calls >= budget.max_calls:
        return StopReason.step_budget
    if budget.max_tokens is not None and usage.tokens >= budget.max_tokens:
        return StopReason.token_budget
    if usage.exceeded(budget, "episode"):
        return StopReason.timeout
    return None


def _infrastructure_fault(access: EpisodeAccess, timed_out: bool) -> StopReason | None:
    """Whether the machine spoiled the episode: the gateway answered it with an infrastructure fault, or it ran
    out of time while its calls were being retried across a backbone restart."""
    if access.fault is not None:
        return StopReason.spoiled_by(blame(access.fault.value))
    if timed_out and access.usage.retries:
        return StopReason.backbone_error
    return None


class EpisodeTask(Protocol):
    """What an isolated episode reads of a task, whatever its kind (a coding task, a web task, ...): its id,
    the files its workspace starts with, and what the agent's task file holds."""

    @property
    def id(self) -> str: ...

    @property
    def files(self) -> Mapping[str, str]: ...

    def public_view(self) -> dict[str, Any]: ...


class EpisodeGateway(Protocol):
    """What an isolated episode uses of the gateway: a ``Gateway``, or a wrapper that watches one (safety probes)."""

    @property
    def run_id(self) -> str: ...

    @property
    def socket_path(self) -> Path: ...

    @property
    def alive(self) -> bool: ...

    def open_episode(
        self,
        *,
        agent_id: str | None = None,
        task_id: str | None = None,
        episode_id: str | None = None,
        budget: Budget | None = None,
        seed: int | None = None,
    ) -> EpisodeAccess: ...

    def close_episode(self, access: EpisodeAccess) -> Usage: ...


def run_isolated(
    task: EpisodeTask,
    agent_dir: Path,
    gateway: EpisodeGateway,
    *,
    sandbox_config: SandboxConfig | None = None,
    budget: EpisodeBudget | None = None,
    agent_id: str = "seed",
    episode_id: str | None = None,
    time_limit: float = 600.0,
    checkpoint_dir: Path | None = None,
    inspect: Callable[[RunningSandbox], None] | None = None,
    cache_dir: Path | None = None,
    view: dict | None = None,
    extras: SandboxExtras | None = None,
    seed: int | None = None,
) -> EpisodeOutcome:
    """Copy the agent into a fresh sandbox and run it there against ``task``.

    ``seed`` seeds the episode's model calls (the gateway mixes it into each call's own seed; see ``call_seed``).

    ``view`` is what the agent's task file holds (``task.public_view()`` unless given); ``extras`` what a task
    kind adds to the sandbox (see :class:`SandboxExtras`; web episodes use it).
    The gateway enforces the token and call budget (one call per step), whatever the agent's code says.
    ``inspect`` sees the sandbox after the agent exited, before it is removed (safety probes look outside the
    workspace with it). An agent that declares extra requirements runs on its derived image (built once, its
    wheels kept under ``cache_dir``); one whose requirements do not install ends as a crash that says why.
    """
    budget = budget or EpisodeBudget()
    episode_id = episode_id or uuid.uuid4().hex[:12]
    extras = extras or SandboxExtras()
    try:
        sandbox_config = agent_sandbox_config(
            sandbox_config or SandboxConfig(), agent_dir, Path(cache_dir or default_cache_dir())
        )
    except ImageBuildError as exc:
        return EpisodeOutcome(
            task_id=task.id, mode="isolated", stop_reason=StopReason.agent_crash, error=str(exc)
        )
    access = gateway.open_episode(
        agent_id=agent_id,
        task_id=task.id,
        episode_id=episode_id,
        budget=Budget(max_calls=budget.max_steps, max_tokens=budget.max_tokens, max_seconds=time_limit),
        seed=seed,
    )
    started = time.monotonic()
    try:
        with start_sandbox(
            sandbox_config,
            run_id=gateway.run_id,
            gateway_socket=gateway.socket_path,
            env={**access.env(), **extras.env},
            binds=extras.binds,
        ) as sb:
            sb.put_files(task.files)
            sb.put_dir(agent_dir, contract.AGENT_DIR)
            put_host_modules(sb)
            sb.write_file(contract.TASK_FILE, json.dumps(view or task.public_view()))
            args = EpisodeArgs(episode=episode_id, max_steps=budget.max_steps, max_tokens=budget.max_tokens)
            result = sb.exec(
                contract.command(args), cwd=contract.WORKSPACE, timeout=time_limit, max_output_bytes=256_000
            )
            reported = contract.read_result(result.output, episode_id)
            workspace = sb.get_tar(contract.WORKSPACE)
            if inspect is not None:
                inspect(sb)
            if checkpoint_dir is not None:
                _save_checkpoint(sb, checkpoint_dir / f"{episode_id}.sqlite")
    except SANDBOX_FAULTS as exc:
        return EpisodeOutcome(
            task_id=task.id,
            mode="isolated",
            stop_reason=StopReason.docker_error,
            tokens=access.usage.tokens,
            calls=access.usage.calls,
            retries=access.usage.retries,
            seconds=time.monotonic() - started,
            error=f"the episode's sandbox failed: {exc.__class__.__name__}: {exc}",
        )
    finally:
        usage = gateway.close_episode(access)
    stop_reason = _stop_reason(reported, access, result.timed_out)
    if not gateway.alive and not stop_reason.infrastructure:
        stop_reason = StopReason.gateway_error
    error = access.fault_detail if stop_reason.infrastructure else None
    return EpisodeOutcome(
        task_id=task.id,
        mode="isolated",
        stop_reason=stop_reason,
        steps=reported.steps,
        tokens=usage.tokens,
        calls=usage.calls,
        retries=usage.retries,
        seconds=time.monotonic() - started,
        error=error or reported.error or _no_result(reported.status),
        log_tail=result.output[-4000:],
        workspace_tar=workspace,
        result=reported.status,
        exit_code=result.exit_code,
    )


def _no_result(status: ResultStatus) -> str | None:
    return {
        ResultStatus.missing: "the agent printed no result line",
        ResultStatus.foreign: "the agent printed result lines for other episodes only",
        ResultStatus.malformed: "the agent's result line is not the contract's JSON",
    }.get(status)


def _save_checkpoint(sandbox: RunningSandbox, target: Path) -> None:
    try:
        data = sandbox.read_file(contract.CHECKPOINT_FILE)
    except Exception:  # noqa: BLE001 - an agent without a checkpointer still has a result
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
