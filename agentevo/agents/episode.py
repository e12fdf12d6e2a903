"""Running one episode of an agent on a task, in either mode.

* SDK mode: the graph runs in this process; its tools act in a sandbox through ``SandboxWorkspace``.
* Isolated mode: the agent's package is copied into the sandbox and runs there; it reaches the LLM
  only through the gateway socket. Evolved (untrusted) agent code always runs this way.

Either way the result is the final workspace (as a tar stream) for the evaluator, plus what the
episode cost; the verdict is never the agent's to give.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker.errors
import requests
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from agentevo import contract
from agentevo.agents.seed import AgentConfig, build_agent, initial_state, run_config
from agentevo.contract import AgentResult, EpisodeArgs, ResultStatus, StopReason, reported_reason
from agentevo.gateway import Budget, EpisodeAccess, Fault, Gateway
from agentevo.sandbox import DockerUnavailable, Sandbox, SandboxConfig, SandboxDied
from agentevo.tasks import Task

CONTRACT_SOURCE = Path(contract.__file__).read_bytes()  # the agent reads this copy; the host keeps its own


def seed_agent_dir() -> Path:
    """The seed agent's package folder (what evolution starts from)."""
    return Path(__file__).resolve().parent / "seed"


# Docker engine failures, as the sandbox runtime and the docker SDK raise them.
DOCKER_FAULTS = (
    DockerUnavailable,
    SandboxDied,
    docker.errors.DockerException,
    requests.exceptions.RequestException,
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


class SandboxWorkspace:
    """SDK mode: the agent's tools, running in this process, act inside a sandbox."""

    def __init__(self, sandbox: Sandbox, root: str = "/workspace") -> None:
        self.sandbox = sandbox
        self.root = root

    def _path(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.root}/{path}"

    def run(self, command: str, timeout: float) -> tuple[int, str]:
        result = self.sandbox.exec(command, cwd=self.root, timeout=timeout)
        return result.exit_code, result.output

    def read(self, path: str) -> str:
        return self.sandbox.read_file(self._path(path)).decode(errors="replace")

    def write(self, path: str, content: str) -> None:
        self.sandbox.write_file(self._path(path), content)


def _put_files(sandbox: Sandbox, files: dict[str, str], dest: str = "/workspace") -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    sandbox.put_tar(buf.getvalue(), dest)


def run_sdk(
    task: Task,
    llm: BaseChatModel,
    sandbox: Sandbox,
    *,
    agent_config: AgentConfig | None = None,
    checkpointer: Any = None,
    thread_id: str | None = None,
) -> EpisodeOutcome:
    """Run the seed agent in this process on ``task``, its tools acting in ``sandbox``."""
    config = agent_config or AgentConfig()
    started = time.monotonic()
    _put_files(sandbox, task.files)
    graph = build_agent(llm, SandboxWorkspace(sandbox), config, checkpointer)
    state = graph.invoke(initial_state(task.public_view()), run_config(config, thread_id or uuid.uuid4().hex))
    return EpisodeOutcome(
        task_id=task.id,
        mode="sdk",
        stop_reason=reported_reason(state.get("stop_reason")),
        steps=state.get("steps", 0),
        tokens=state.get("tokens", 0),
        calls=state.get("steps", 0),
        seconds=time.monotonic() - started,
        error=state.get("error"),
        workspace_tar=sandbox.get_tar("/workspace"),
    )


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
        closing = access.fault in (Fault.gateway_error, Fault.gateway_closing)
        return StopReason.gateway_error if closing else StopReason.backbone_error
    if timed_out and access.usage.retries:
        return StopReason.backbone_error
    return None


def run_isolated(
    task: Task,
    agent_dir: Path,
    gateway: Gateway,
    *,
    sandbox_config: SandboxConfig | None = None,
    agent_config: AgentConfig | None = None,
    agent_id: str = "seed",
    episode_id: str | None = None,
    time_limit: float = 600.0,
    checkpoint_dir: Path | None = None,
) -> EpisodeOutcome:
    """Copy the agent into a fresh sandbox and run it there against ``task``.

    The gateway enforces the token and call budget (one call per step), whatever the agent's code says.
    """
    config = agent_config or AgentConfig()
    episode_id = episode_id or uuid.uuid4().hex[:12]
    access = gateway.open_episode(
        agent_id=agent_id,
        task_id=task.id,
        episode_id=episode_id,
        budget=Budget(max_calls=config.max_steps, max_tokens=config.max_tokens, max_seconds=time_limit),
    )
    started = time.monotonic()
    try:
        with Sandbox.start(
            sandbox_config, run_id=gateway.run_id, gateway_socket=gateway.socket_path, env=access.env()
        ) as sb:
            _put_files(sb, task.files)
            sb.put_dir(agent_dir, contract.AGENT_DIR)
            sb.write_file(contract.CONTRACT_COPY, CONTRACT_SOURCE)
            sb.write_file(contract.TASK_FILE, json.dumps(task.public_view()))
            args = EpisodeArgs(episode=episode_id, max_steps=config.max_steps, max_tokens=config.max_tokens)
            result = sb.exec(
                contract.command(args), cwd=contract.WORKSPACE, timeout=time_limit, max_output_bytes=256_000
            )
            reported = contract.read_result(result.output, episode_id)
            workspace = sb.get_tar(contract.WORKSPACE)
            if checkpoint_dir is not None:
                _save_checkpoint(sb, checkpoint_dir / f"{episode_id}.sqlite")
    except DOCKER_FAULTS as exc:
        return EpisodeOutcome(
            task_id=task.id, mode="isolated", stop_reason=StopReason.docker_error, tokens=access.usage.tokens,
            calls=access.usage.calls, retries=access.usage.retries, seconds=time.monotonic() - started,
            error=f"the episode's sandbox failed: {exc.__class__.__name__}: {exc}",
        )  # fmt: skip
    finally:
        usage = gateway.close_episode(access)
    stop_reason = _stop_reason(reported, access, result.timed_out)
    if not gateway.alive and not stop_reason.infrastructure:
        stop_reason = StopReason.gateway_error
    error = access.fault_detail if stop_reason.infrastructure else None
    return EpisodeOutcome(
        task_id=task.id, mode="isolated", stop_reason=stop_reason,
        steps=reported.steps, tokens=usage.tokens, calls=usage.calls, retries=usage.retries,
        seconds=time.monotonic() - started, error=error or reported.error or _no_result(reported.status),
        log_tail=result.output[-4000:], workspace_tar=workspace, result=reported.status, exit_code=result.exit_code,
    )  # fmt: skip


def _no_result(status: ResultStatus) -> str | None:
    return {
        ResultStatus.missing: "the agent printed no result line",
        ResultStatus.foreign: "the agent printed result lines for other episodes only",
        ResultStatus.malformed: "the agent's result line is not the contract's JSON",
    }.get(status)


def _save_checkpoint(sandbox: Sandbox, target: Path) -> None:
    try:
        data = sandbox.read_file(contract.CHECKPOINT_FILE)
    except Exception:  # noqa: BLE001 - an agent without a checkpointer still has a result
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
