"""Episodes as the backbone saw them: a run's recorded gateway calls joined with the evaluator's verdicts.

The gateway records every call of a run in ``llm_calls.jsonl`` (request body and response, tagged with task and
episode); the run's rows (``evaluate.results.run_rows``) say per (agent, task, attempt) whether it ``passed``. An episode's id ends
in ``-<attempt>``, which joins the two; in an evolution run every node attempts the same tasks under the same
episode ids, so calls and verdicts are joined per agent (the node id the gateway recorded with each call). Each successful call becomes a :class:`Turn`: the context and the reply
rendered exactly as a text-only backbone reads them (tools in the system prompt, tool calls as fenced action
blocks, tool results as user turns), so training teaches the format the model is served in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, convert_to_messages
from pydantic import BaseModel, Field

from agentevo.evaluate.results import ResultRow, run_rows
from agentevo.gateway.recorder import CallRecord
from agentevo.llm.fenced_tools import messages_to_plain, render_tools_prompt, with_tools_prompt
from agentevo.runs import CALLS_FILE
from agentevo.train.config import HintKind

Message = dict[str, str]
_BLOCK = re.compile(r"```[ \t]*(\w*)[^\n]*\n(.*?)```", re.DOTALL)
_ROLES: dict[type[BaseMessage], str] = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}


class TrajectoryError(ValueError):
    """A run folder holds no trajectories that can be read; the message says what is missing."""


class Turn(BaseModel):
    """One model call: what the model read (``prompt``) and what it answered (``completion``)."""

    prompt: list[Message]
    completion: Message


class Episode(BaseModel):
    """One attempt at one task: its turns in order and, when the evaluator judged it, whether it passed."""

    run_id: str
    agent_id: str | None = Field(None, description="The agent (an evolution run's node) that ran it.")
    task_id: str
    episode_id: str
    attempt: int = 0
    model: str | None = None
    passed: bool | None = Field(None, description="None when no verdict was recorded (a task without tests).")
    score: float | None = None
    rationalised: HintKind | None = Field(
        None, description="Set when the reply was made with this kind of hint that the recorded prompt omits."
    )
    visible: bool | None = Field(
        None, description="Whether it passed the checks its task's statement shows (None: not recorded)."
    )
    turns: list[Turn] = Field(default_factory=list)

    @property
    def trace(self) -> str:
        """Every reply of the episode, normalised: duplicate episodes share it."""
        return "\n".join(" ".join(t.completion["content"].split()) for t in self.turns)

    @property
    def answer(self) -> str:
        """The episode's final output, normalised: the last code it wrote (a python block, or the content of a
        write action), else its last reply. Self-consistency votes on it, not on how the episode got there."""
        for turn in reversed(self.turns):
            code = written_code(turn.completion["content"])
            if code is not None:
                return " ".join(code.split())
        return " ".join(self.turns[-1].completion["content"].split()) if self.turns else ""


def written_code(text: str) -> str | None:
    """The last code a reply writes: a python block's body, or the ``content`` argument of an action block."""
    for lang, body in reversed(_BLOCK.findall(text)):
        if lang.lower() in ("python", "py"):
            return body
        if lang.lower() == "action":
            try:
                content = json.loads(body).get("args", {}).get("content")
            except (ValueError, AttributeError):
                continue
            if isinstance(content, str):
                return content
    return None


def _as_dicts(messages: list[BaseMessage]) -> list[Message]:
    return [{"role": _ROLES.get(type(m), "user"), "content": str(m.content)} for m in messages]


def render_prompt(request: dict[str, Any]) -> list[Message]:
    """A chat request as a text-only backbone read it (what ``FencedToolModel`` sends on)."""
    plain = messages_to_plain(convert_to_messages(request["messages"]))
    if request.get("tools"):
        plain = with_tools_prompt(plain, render_tools_prompt(request["tools"]))
    return _as_dicts(plain)


def render_reply(response: dict[str, Any]) -> Message:
    """A chat completion's message as the text the backbone produced (tool calls as action blocks)."""
    message = dict(response["choices"][0]["message"])
    message["content"] = message.get("content") or ""
    (plain,) = messages_to_plain(convert_to_messages([message]))
    return {"role": "assistant", "content": str(plain.content)}


def _turn(record: CallRecord) -> Turn | None:
    if record.status != 200 or not record.response or not record.response.get("choices"):
        return None
    try:
        return Turn(prompt=render_prompt(record.request), completion=render_reply(record.response))
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a malformed record is skipped, not a reason to lose the run


def _last_try(turns: list[Turn]) -> list[Turn]:
    """The turns of the episode's last try: a retried (spoiled) try starts again from the very first prompt."""
    starts = [i for i, turn in enumerate(turns) if turns and turn.prompt == turns[0].prompt]
    return turns[starts[-1] :] if starts else turns


def _attempt_of(episode_id: str) -> int | None:
    tail = episode_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def load_episodes(run_dir: Path) -> list[Episode]:
    """Every recorded episode of a run, with its verdict where the run has a row for it."""
    run_dir = Path(run_dir)
    calls_file = run_dir / CALLS_FILE
    if not calls_file.is_file():
        raise TrajectoryError(
            f"{run_dir} has no {CALLS_FILE}: it is not a run folder, or no model call went "
            "through the gateway there"
        )
    verdicts: dict[tuple[str | None, str, int], ResultRow] = {
        (r.agent_id, r.task_id, r.attempt): r for r in run_rows(run_dir)
    }
    calls: dict[tuple[str | None, str], list[CallRecord]] = {}
    for line in calls_file.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = CallRecord.model_validate(json.loads(line))
        except ValueError:
            continue  # a torn last line of a killed run
        if record.task_id and record.episode_id:
            calls.setdefault((record.agent_id, record.episode_id), []).append(record)
    episodes = []
    for (agent_id, episode_id), records in calls.items():
        records.sort(key=lambda r: r.time)
        turns = _last_try([t for t in map(_turn, records) if t is not None])
        if not turns:
            continue
        task_id, attempt = records[0].task_id or "", _attempt_of(episode_id)
        verdict = verdicts.get((agent_id, task_id, attempt)) if attempt is not None else None
        episodes.append(
            Episode(
                run_id=records[0].run_id,
                agent_id=agent_id,
                task_id=task_id,
                episode_id=episode_id,
                attempt=attempt or 0,
                model=records[-1].model,
                turns=turns,
                passed=None if verdict is None else verdict.passed,
                score=None if verdict is None else verdict.score,
                rationalised=None if verdict is None else verdict.detail.get("rationalised"),
                visible=None if verdict is None else verdict.detail.get("visible"),
            )
        )
    return episodes
