"""One web episode: an agent in its own sandbox acts on the page of a web sandbox through the agent socket.

Two containers, both hardened with no network: the browser's (``WebEnv``) and the agent's (the ``python``
image, the agent package copied in as for any isolated episode, plus the contract and a copy of the
browser tools). The agent's container is given the gateway's socket and the browser's agent socket,
nothing else; the host reads the reward through the control socket, which the agent never sees.
"""

from __future__ import annotations

from pathlib import Path

from agentevo.agents.episode import EpisodeBudget, EpisodeOutcome, SandboxExtras, run_isolated
from agentevo.contract import StopReason
from agentevo.contract.browser import BROWSER_SOCKET_ENV, BROWSER_SOCKET_IN_SANDBOX, BrowserServerError
from agentevo.evaluate.web import WebScore, score_page
from agentevo.gateway import Gateway
from agentevo.sandbox import SandboxConfig
from agentevo.tasks.miniwob import WebTask
from agentevo.web.env import WebEnv


class WebEpisodeOutcome(EpisodeOutcome):
    """What a web episode produced: an isolated episode's outcome, plus the page's verdict."""

    mode: str = "web"
    score: WebScore | None = None


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
    """Start ``task`` on ``env``'s page, run the agent against it (an isolated episode whose sandbox is also
    given the browser's agent socket), and read the page's reward."""
    try:
        page = env.reset(task.name, task.seed, max_seconds=task.time_limit)
    except BrowserServerError as exc:
        return WebEpisodeOutcome(task_id=task.id, stop_reason=StopReason.docker_error, error=str(exc))
    extras = SandboxExtras(
        binds={env.agent_socket: BROWSER_SOCKET_IN_SANDBOX},
        env={BROWSER_SOCKET_ENV: BROWSER_SOCKET_IN_SANDBOX},
    )
    outcome = run_isolated(
        task,
        agent_dir,
        gateway,
        sandbox_config=sandbox_config,
        budget=budget,
        agent_id=agent_id,
        episode_id=episode_id,
        time_limit=task.time_limit,
        extras=extras,
        view={**task.public_view(), "instructions": f"{task.instructions}\nGoal: {page['goal']}"},
    )
    fields = outcome.model_dump(exclude={"mode"})
    if outcome.stop_reason.infrastructure:
        return WebEpisodeOutcome(**fields)
    try:
        return WebEpisodeOutcome(**fields, score=score_page(task.id, env.result()))
    except BrowserServerError as exc:
        return WebEpisodeOutcome(
            **{**fields, "stop_reason": StopReason.docker_error, "error": f"the page: {exc}"}
        )
