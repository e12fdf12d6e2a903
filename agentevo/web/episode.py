"""One web episode: an agent in its own sandbox acts on the page of a web sandbox through the agent socket.

Two containers, both hardened with no network: the browser's (``WebEnv``) and the agent's (the ``python``
image, the agent package copied in as for any isolated episode, plus the contract and a copy of the
browser tools). The agent's container is given the gateway's socket and the browser's agent socket,
nothing else; the host reads the reward through the control socket, which the agent never sees.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from pydantic import BaseModel

from agentevo import contract
from agentevo.agents.episode import CONTRACT_SOURCE, DOCKER_FAULTS, EpisodeBudget, _stop_reason
from agentevo.contract import EpisodeArgs, ResultStatus, StopReason
from agentevo.evaluate.web import WebScore, score_page
from agentevo.gateway import Budget, Gateway
from agentevo.sandbox import Sandbox, SandboxConfig
from agentevo.tasks.miniwob import WebTask
from agentevo.web import tools
from agentevo.web.env import WebEnv
from agentevo.web.tools import BROWSER_SOCKET_ENV, BROWSER_SOCKET_IN_SANDBOX, BrowserServerError

TOOLS_SOURCE = Path(tools.__file__).read_bytes()
TOOLS_COPY = f"{contract.PACKAGE_ROOT}/agentevo/web/tools.py"


def web_seed_agent_dir() -> Path:
    """The seed web agent's package folder (never imported by the host)."""
    return Path(__file__).resolve().parents[1] / "agents" / "web_seed"


class WebEpisodeOutcome(BaseModel):
    """What a web episode produced: the page's verdict, and what the episode cost (the gateway's counts)."""

    task_id: str
    stop_reason: StopReason
    score: WebScore | None = None
    steps: int = 0
    tokens: int = 0
    calls: int = 0
    seconds: float = 0.0
    error: str | None = None
    log_tail: str = ""


def run_web_episode(
    task: WebTask,
    agent_dir: Path,
    gateway: Gateway,
    env: WebEnv,
    *,
    budget: EpisodeBudget | None = None,
    sandbox_config: SandboxConfig | None = None,
    agent_id: str = "seed",
    episode_id: str | None = None,
) -> WebEpisodeOutcome:
    """Start ``task`` on ``env``'s page, run the agent against it, and read the page's reward."""
    budget = budget or EpisodeBudget()
    episode_id = episode_id or uuid.uuid4().hex[:12]
    started = time.monotonic()
    try:
        page = env.reset(task.name, task.seed, max_seconds=task.time_limit)
    except BrowserServerError as exc:
        return WebEpisodeOutcome(task_id=task.id, stop_reason=StopReason.docker_error, error=str(exc))
    access = gateway.open_episode(
        agent_id=agent_id, task_id=task.id, episode_id=episode_id,
        budget=Budget(max_calls=budget.max_steps, max_tokens=budget.max_tokens, max_seconds=task.time_limit),
    )  # fmt: skip
    view = {**task.public_view(), "instructions": f"{task.instructions}\nGoal: {page['goal']}"}
    config = sandbox_config or SandboxConfig()
    try:
        with Sandbox.start(
            config, run_id=gateway.run_id, binds={env.agent_socket: BROWSER_SOCKET_IN_SANDBOX},
            env={**access.env(), BROWSER_SOCKET_ENV: BROWSER_SOCKET_IN_SANDBOX}, gateway_socket=gateway.socket_path,
        ) as sb:  # fmt: skip
            sb.put_dir(agent_dir, contract.AGENT_DIR)
            sb.write_file(contract.CONTRACT_COPY, CONTRACT_SOURCE)
            sb.write_file(TOOLS_COPY, TOOLS_SOURCE)
            sb.write_file(contract.TASK_FILE, json.dumps(view))
            args = EpisodeArgs(episode=episode_id, max_steps=budget.max_steps, max_tokens=budget.max_tokens)
            result = sb.exec(
                contract.command(args),
                cwd=contract.WORKSPACE,
                timeout=task.time_limit,
                max_output_bytes=256_000,
            )
        score = score_page(task.id, env.result())
    except (*DOCKER_FAULTS, BrowserServerError) as exc:
        return WebEpisodeOutcome(
            task_id=task.id, stop_reason=StopReason.docker_error, tokens=access.usage.tokens,
            calls=access.usage.calls, seconds=time.monotonic() - started,
            error=f"the episode's sandboxes failed: {exc.__class__.__name__}: {exc}",
        )  # fmt: skip
    finally:
        usage = gateway.close_episode(access)
    reported = contract.read_result(result.output, episode_id)
    stop_reason = _stop_reason(reported, access, result.timed_out)
    return WebEpisodeOutcome(
        task_id=task.id, stop_reason=stop_reason, score=score, steps=reported.steps, tokens=usage.tokens,
        calls=usage.calls, seconds=time.monotonic() - started,
        error=reported.error or (None if reported.status is ResultStatus.ok else f"result line {reported.status.value}"),
        log_tail=result.output[-4000:],
    )  # fmt: skip
