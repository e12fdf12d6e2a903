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

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field

from agentevo.agents.seed import AgentConfig, build_agent, initial_state, run_config
from agentevo.gateway import Budget, Gateway
from agentevo.sandbox import Sandbox, SandboxConfig
from agentevo.tasks import Task

AGENT_DIR_IN_SANDBOX = "/tmp/agentpkg/agent"
TASK_FILE_IN_SANDBOX = "/tmp/agent-task.json"
CHECKPOINT_IN_SANDBOX = "/tmp/agent-checkpoint.sqlite"
RESULT_PREFIX = "AGENTEVO-AGENT "


def seed_agent_dir() -> Path:
    """The seed agent's package folder (what evolution starts from)."""
    return Path(__file__).resolve().parent / "seed"


class EpisodeOutcome(BaseModel):
    """What an episode produced. ``tokens`` and ``calls`` come from the gateway in isolated mode."""

    task_id: str
    mode: str
    stop_reason: str  # submitted | step_budget | token_budget | llm_error | agent_crash | timeout
    steps: int = 0
    tokens: int = 0
    calls: int = 0
    seconds: float = 0.0
    error: str | None = None
    log_tail: str = ""
    workspace_tar: bytes = Field(b"", exclude=True, repr=False)

    @property
    def submitted(self) -> bool:
        return self.stop_reason == "submitted"


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
        task_id=task.id, mode="sdk", stop_reason=state.get("stop_reason", "agent_crash"), steps=state.get("steps", 0),
        tokens=state.get("tokens", 0), calls=state.get("steps", 0), seconds=time.monotonic() - started,
        error=state.get("error"), workspace_tar=sandbox.get_tar("/workspace"),
    )


def _stop_reason(reported: dict[str, Any], refused: str | None, timed_out: bool) -> str:
    if timed_out:
        return "timeout"
    if refused:  # the gateway's refusal outranks whatever the agent says happened
        return "step_budget" if "calls" in refused else "token_budget"
    return reported.get("stop_reason") or "agent_crash"


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
        agent_id=agent_id, task_id=task.id, episode_id=episode_id,
        budget=Budget(max_calls=config.max_steps, max_tokens=config.max_tokens, max_seconds=time_limit),
    )
    started = time.monotonic()
    try:
        with Sandbox.start(sandbox_config, run_id=gateway.run_id, gateway_socket=gateway.socket_path, env=access.env()) as sb:
            _put_files(sb, task.files)
            sb.put_dir(agent_dir, AGENT_DIR_IN_SANDBOX)
            sb.write_file(TASK_FILE_IN_SANDBOX, json.dumps(task.public_view()))
            command = (
                f"cd /tmp/agentpkg && python -m agent.run --task {TASK_FILE_IN_SANDBOX} --thread-id {episode_id} "
                f"--checkpoint {CHECKPOINT_IN_SANDBOX} --max-steps {config.max_steps} --max-tokens {config.max_tokens}"
            )
            result = sb.exec(command, cwd="/workspace", timeout=time_limit, max_output_bytes=256_000)
            reported = _last_report(result.output)
            workspace = sb.get_tar("/workspace")
            if checkpoint_dir is not None:
                _save_checkpoint(sb, checkpoint_dir / f"{episode_id}.sqlite")
    finally:
        usage = gateway.close_episode(access)
    refused = usage.exceeded(access.budget, "episode") if reported.get("stop_reason") == "llm_error" else None
    return EpisodeOutcome(
        task_id=task.id, mode="isolated", stop_reason=_stop_reason(reported, refused, result.timed_out),
        steps=int(reported.get("steps") or 0), tokens=usage.tokens, calls=usage.calls,
        seconds=time.monotonic() - started, error=reported.get("error") or (None if reported else "the agent printed no result"),
        log_tail=result.output[-4000:], workspace_tar=workspace,
    )


def _last_report(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                report = json.loads(line[len(RESULT_PREFIX):])
            except ValueError:
                return {}
            return report if isinstance(report, dict) else {}
    return {}


def _save_checkpoint(sandbox: Sandbox, target: Path) -> None:
    try:
        data = sandbox.read_file(CHECKPOINT_IN_SANDBOX)
    except Exception:  # noqa: BLE001 - an agent without a checkpointer still has a result
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
