"""SDK mode: the seed agent's graph runs in this process and its tools act in a sandbox.

For users who embed the (trusted) seed agent in their own program. Evolved agent code never runs this way:
the evolution loop, the suite runner and the evaluator use isolated mode (``agents/episode.py``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from langchain_core.language_models import BaseChatModel

from agentevo import contract
from agentevo.agents.episode import EpisodeOutcome
from agentevo.agents.seed import AgentConfig, build_agent, initial_state, run_config
from agentevo.contract import reported_reason
from agentevo.sandbox import RunningSandbox
from agentevo.tasks import Task


class SandboxWorkspace:
    """SDK mode: the agent's tools, running in this process, act inside a sandbox."""

    def __init__(self, sandbox: RunningSandbox, root: str = contract.WORKSPACE) -> None:
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


def run_sdk(
    task: Task,
    llm: BaseChatModel,
    sandbox: RunningSandbox,
    *,
    agent_config: AgentConfig | None = None,
    checkpointer: Any = None,
    thread_id: str | None = None,
) -> EpisodeOutcome:
    """Run the seed agent in this process on ``task``, its tools acting in ``sandbox``."""
    config = agent_config or AgentConfig()
    started = time.monotonic()
    sandbox.put_files(task.files)
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
        workspace_tar=sandbox.get_tar(contract.WORKSPACE),
    )
