"""The agent contract: how the host runs an agent in a sandbox, and what an agent must honour. Version 1.

Standard library only, like the rest of this package (:mod:`agentevo.contract.browser`, the tools web agents act
with). The host imports it; a copy of the package (``FILES``) is placed in every agent sandbox as
``agentevo/contract/`` beside the agent package, so an agent reads the same constants. What the host reads back
(the result line) it parses with its own copy: an agent that edits its copy changes nothing on the host's side.

An agent is a Python package named ``agent`` (a folder with ``__init__.py``) whose module ``agent.run``
is the entry point. For one episode the host:

1. copies the package to ``AGENT_DIR`` and the task's public view (``TASK_FIELDS``) as JSON to ``TASK_FILE``,
   and the task's starting files into ``WORKSPACE``;
2. sets ``SOCKET_ENV`` (the gateway's Unix socket, an OpenAI-compatible API at ``GATEWAY_BASE_URL``) and
   ``TOKEN_ENV`` (this episode's API key) in the environment; there is no network and no other key;
3. runs :func:`command` in ``WORKSPACE``;
4. reads the last line of output that starts with ``RESULT_PREFIX`` and names this episode
   (:func:`read_result`), and scores whatever the agent left in ``WORKSPACE``.

The agent should print exactly one :func:`result_line` when it stops. Its account of ``steps`` and
``tokens`` is informative; the gateway's counts are the ones charged, and the verdict is the evaluator's.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass
from enum import Enum
from typing import Final

VERSION: Final = 1  # Final: the genome's ``contract`` field is this very literal
PACKAGE_ROOT = "/tmp/agentpkg"  # on sys.path when the entry runs: holds ``agent/`` and ``agentevo/contract/``
AGENT_PACKAGE = "agent"
AGENT_DIR = f"{PACKAGE_ROOT}/{AGENT_PACKAGE}"
ENTRY_MODULE = f"{AGENT_PACKAGE}.run"
CONTRACT_COPY = f"{PACKAGE_ROOT}/agentevo/contract"  # this package's copy in the sandbox
FILES = ("__init__.py", "browser.py")  # what is copied there (every module of this package)
TASK_FILE = "/tmp/agent-task.json"
CHECKPOINT_FILE = "/tmp/agent-checkpoint.sqlite"
WORKSPACE = "/workspace"
RESULT_PREFIX = "AGENTEVO-AGENT "
SOCKET_ENV = "AGENTEVO_GATEWAY_SOCKET"
GATEWAY_SOCKET_IN_SANDBOX = (
    "/run/agentevo/gateway.sock"  # where the gateway's socket is bound (SOCKET_ENV's value)
)
TOKEN_ENV = "AGENTEVO_GATEWAY_TOKEN"
GATEWAY_BASE_URL = "http://gateway/v1"  # any host name: requests go over the socket
# An agent folder may hold this file: extra Python packages (every one pinned with ==, dependencies included)
# that the host installs, offline, into a sandbox image derived from the standard one for that agent.
REQUIREMENTS_FILE = "requirements.txt"
# An agent folder may hold this file: its strategy as data (the seed's ``genome.py`` declares the schema, whose
# ``contract`` field is VERSION). Evolution's genome operators rewrite only it and the prompt files.
GENOME_FILE = "genome.json"
TASK_FIELDS = ("id", "suite", "instructions", "files", "solution_file", "entry_point", "difficulty")


class Culprit(str, Enum):
    """Who is to blame for how something ended (an episode, a model call, its judging): the agent, or a part of
    the infrastructure. An end the infrastructure is to blame for says nothing about the agent: the attempt is
    run again, and never scored. :func:`blame` says it for every end."""

    agent = "agent"
    backbone = "backbone"  # the model server: dead, restarting, hung, or answering nonsense
    gateway = "gateway"  # the LLM gateway failed, or closed while a call was in flight
    sandbox = "sandbox"  # the sandbox engine failed a sandbox (the agent's or the evaluator's)

    @property
    def infrastructure(self) -> bool:
        return self is not Culprit.agent


# The ends the infrastructure is to blame for, by wire value. The three vocabularies of an end (``StopReason``
# here, the gateway's ``Fault``, the results' ``ErrorKind``) spell the same failure the same way; every end not
# listed here is the agent's.
_BLAME: Final = {
    "backbone_error": Culprit.backbone,  # StopReason, Fault, ErrorKind
    "backbone_unreachable": Culprit.backbone,  # Fault
    "backbone_timeout": Culprit.backbone,  # Fault
    "backbone_restarted": Culprit.backbone,  # Fault
    "backbone_down": Culprit.backbone,  # Fault
    "gateway_error": Culprit.gateway,  # StopReason, Fault, ErrorKind
    "gateway_closing": Culprit.gateway,  # Fault
    "docker_error": Culprit.sandbox,  # StopReason, ErrorKind: the agent's sandbox
    "sandbox_error": Culprit.sandbox,  # ErrorKind: the evaluation sandbox
}


def blame(end: str) -> Culprit:
    """Who is to blame for an end, given its wire value (a ``StopReason``, ``Fault`` or ``ErrorKind`` value)."""
    return _BLAME.get(end, Culprit.agent)


class StopReason(str, Enum):
    """How an episode ended. The agent may report only the first group; the host decides the rest."""

    # The agent's own account (checked against the gateway's counts).
    submitted = "submitted"
    step_budget = "step_budget"
    token_budget = "token_budget"
    llm_error = "llm_error"  # a model call failed for a reason of the agent's making (a bad request)
    stopped = "stopped"  # it stopped without submitting, for a reason of its own
    # Decided by the host.
    agent_crash = "agent_crash"  # its code crashed or printed no result
    timeout = "timeout"  # it overran the episode's time limit
    backbone_error = "backbone_error"  # the backbone failed under it (after the gateway's retries)
    gateway_error = "gateway_error"  # the gateway failed or closed under it
    docker_error = "docker_error"  # the Docker engine failed its sandbox

    @property
    def infrastructure(self) -> bool:
        """The machine's fault, not the agent's: the episode is run again and never scored."""
        return blame(self.value).infrastructure

    @staticmethod
    def spoiled_by(culprit: Culprit) -> StopReason:
        """How an episode ends when a part of the infrastructure spoils it."""
        return _SPOILED_BY[culprit]

    @property
    def reportable(self) -> bool:
        """Whether an agent may claim it (never an infrastructure reason: that would hide its failures)."""
        return self in _REPORTABLE


_REPORTABLE = frozenset(
    {
        StopReason.submitted,
        StopReason.step_budget,
        StopReason.token_budget,
        StopReason.llm_error,
        StopReason.stopped,
    }
)

_SPOILED_BY: Final = {
    Culprit.backbone: StopReason.backbone_error,
    Culprit.gateway: StopReason.gateway_error,
    Culprit.sandbox: StopReason.docker_error,
}


class ResultStatus(str, Enum):
    """What the host found of the agent's result line."""

    ok = "ok"
    missing = "missing"  # no result line at all
    foreign = "foreign"  # result lines, but only for other episodes (forged or copied)
    malformed = "malformed"  # a line for this episode that is not the contract's JSON


@dataclass(frozen=True)
class EpisodeArgs:
    """The entry point's arguments."""

    episode: str
    max_steps: int
    max_tokens: int
    task: str = TASK_FILE
    workspace: str = WORKSPACE
    checkpoint: str = CHECKPOINT_FILE


@dataclass(frozen=True)
class AgentResult:
    """The agent's account of its episode, as the host read it."""

    status: ResultStatus
    stop_reason: StopReason = StopReason.agent_crash
    steps: int = 0
    tokens: int = 0
    error: str | None = None


def command(args: EpisodeArgs) -> str:
    """The shell command the host runs (in ``WORKSPACE``) for one episode."""
    argv = [
        "python",
        "-m",
        ENTRY_MODULE,
        "--task",
        args.task,
        "--workspace",
        args.workspace,
        "--checkpoint",
        args.checkpoint,
        "--episode",
        args.episode,
        "--max-steps",
        str(args.max_steps),
        "--max-tokens",
        str(args.max_tokens),
    ]
    return f"cd {shlex.quote(PACKAGE_ROOT)} && " + " ".join(shlex.quote(a) for a in argv)


def parse_args(argv: list[str] | None = None) -> EpisodeArgs:
    """For the agent's entry point: the arguments :func:`command` passes."""
    parser = argparse.ArgumentParser(description=f"an agentevo agent (contract v{VERSION})")
    parser.add_argument("--task", default=TASK_FILE)
    parser.add_argument("--workspace", default=WORKSPACE)
    parser.add_argument("--checkpoint", default=CHECKPOINT_FILE)
    parser.add_argument("--episode", required=True)
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--max-tokens", type=int, required=True)
    ns = parser.parse_args(argv)
    return EpisodeArgs(
        episode=ns.episode,
        max_steps=ns.max_steps,
        max_tokens=ns.max_tokens,
        task=ns.task,
        workspace=ns.workspace,
        checkpoint=ns.checkpoint,
    )


def read_task(path: str = TASK_FILE) -> dict:
    """The task's public view, as the host wrote it."""
    with open(path, encoding="utf-8") as fh:
        task = json.load(fh)
    missing = [name for name in ("id", "instructions") if name not in task]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: not a contract v{VERSION} task file")
    return task


def result_line(
    episode: str, stop_reason: StopReason | str, steps: int, tokens: int, error: str | None = None
) -> str:
    """The line an agent prints when it stops."""
    reason = StopReason(stop_reason)
    data = {"v": VERSION, "episode": episode, "stop_reason": reason.value, "steps": steps, "tokens": tokens}
    if error:
        data["error"] = error[:2000]
    return RESULT_PREFIX + json.dumps(data)


def read_result(output: str, episode: str) -> AgentResult:
    """The last result line for ``episode`` in ``output``; lines for other episodes are ignored."""
    status = ResultStatus.missing
    for line in reversed(output.splitlines()):
        if not line.startswith(RESULT_PREFIX):
            continue
        try:
            data = json.loads(line[len(RESULT_PREFIX) :])
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("episode") != episode:
            status = (
                ResultStatus.malformed if data is None or not isinstance(data, dict) else ResultStatus.foreign
            )
            continue
        return _result(data)
    return AgentResult(status=status)


def _result(data: dict) -> AgentResult:
    try:
        steps, tokens = int(data.get("steps") or 0), int(data.get("tokens") or 0)
    except (ValueError, TypeError):
        return AgentResult(status=ResultStatus.malformed)
    error = data.get("error")
    return AgentResult(
        status=ResultStatus.ok,
        stop_reason=reported_reason(data.get("stop_reason")),
        steps=max(steps, 0),
        tokens=max(tokens, 0),
        error=str(error)[:2000] if error else None,
    )


def reported_reason(value: object) -> StopReason:
    """The stop reason an agent reported, as far as an agent may report one (anything else: ``stopped``)."""
    try:
        reason = StopReason(value)
    except ValueError:
        return StopReason.stopped
    return reason if reason.reportable else StopReason.stopped
