"""What a diagnosis or a reflection reads about a parent: its failed episodes, each with the task's public
instructions, the evaluator's verdict kind and the agent's own trajectory (from the gateway's call records).

Never the hidden tests: only ``Task.public_view`` fields and what the agent itself saw and said.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from agentevo.evaluate.results import ResultsStore
from agentevo.runs import CALLS_FILE, RESULTS_DB
from agentevo.tasks import Task

MESSAGE_CHARS, TRAJECTORY_CHARS = 700, 4000


class FailedEpisode(BaseModel):
    """One failed episode of the parent, as the mutating LLM is shown it."""

    task_id: str
    instructions: str
    verdict: str
    score: float
    trajectory: str

    def render(self) -> str:
        return (
            f"## Task {self.task_id} (score {self.score:.2f}, {self.verdict})\n{self.instructions}\n\n"
            f"### What the agent did (last model call)\n{self.trajectory or '(no model call recorded)'}"
        )


def failures(
    run_dir: Path, run_id: str, node_id: str, tasks: dict[str, Task], limit: int
) -> list[FailedEpisode]:
    """Up to ``limit`` of the node's scored, failed attempts, worst first."""
    with ResultsStore(run_dir / RESULTS_DB) as store:
        rows = [r for r in store.rows(run_id, node_id) if r.scored and not r.passed]
    rows.sort(key=lambda r: (r.score, r.task_id))
    calls = _last_calls(run_dir, node_id)
    return [
        FailedEpisode(
            task_id=row.task_id,
            instructions=tasks[row.task_id].instructions if row.task_id in tasks else "",
            verdict=row.error_kind.value if row.error_kind else "failed",
            score=row.score,
            trajectory=calls.get(row.task_id, ""),
        )
        for row in rows[:limit]
    ]


def _last_calls(run_dir: Path, node_id: str) -> dict[str, str]:
    """Per task, the node's last recorded model call rendered as its messages and the reply."""
    path = run_dir / CALLS_FILE
    last: dict[str, dict] = {}
    if path.exists():
        with path.open() as fh:
            for line in fh:
                record = json.loads(line)
                if record.get("agent_id") == node_id and record.get("task_id"):
                    last[record["task_id"]] = record
    return {task: _render(record) for task, record in last.items()}


def _render(record: dict) -> str:
    messages = list(record.get("request", {}).get("messages", []))
    reply = ((record.get("response") or {}).get("choices") or [{}])[0].get("message") or {}
    if reply:
        messages.append(reply)
    lines = [f"[{m.get('role', '?')}] {_clip(_text(m))}" for m in messages[1:]]  # the system prompt is known
    return _clip("\n".join(lines), TRAJECTORY_CHARS, keep_tail=True)


def _text(message: dict) -> str:
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    calls = message.get("tool_calls") or []
    return content + "".join(
        f" <{c['function']['name']} {c['function']['arguments']}>" for c in calls if "function" in c
    )


def _clip(text: str, limit: int = MESSAGE_CHARS, *, keep_tail: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "…" + text[-limit:] if keep_tail else text[:limit] + "…"
