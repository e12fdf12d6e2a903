"""Scores of a served model name (the base or an adapter) by direct prompting, and the direct-prompt format.

Two scorers: :class:`AnswerScorer` for tasks without tests (a probe passes when the reply contains the
expected answer), and :class:`TaskScorer` for coding tasks (the model is asked for ``solution.py`` directly,
and the evaluator runs the hidden tests on it in a fresh sandbox). Both answer greedily, so a score is a
property of the weights, not of luck. Promotion reads them through :class:`~agentevo.compare.promotion.ScoreJudge`;
by default it judges on agent episodes instead (:class:`~agentevo.compare.promotion.EpisodeJudge`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, Field

from agentevo.llm.supervised import AdapterServer
from agentevo.tasks.model import Task

_CODE = re.compile(r"```(?:python|py)?[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
SOLVE_PROMPT = (
    "You are an expert Python programmer. Reply with the complete contents of {file} in one ```python code "
    "block, and nothing else."
)


class Score(BaseModel):
    """Tasks passed out of tasks tried, for one model name."""

    model: str
    passed: int
    total: int
    per_task: dict[str, bool] = Field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


class Scorer(Protocol):
    """Scores a served model name on a fixed held-out set."""

    def __call__(self, model: str) -> Score: ...


Ask = Callable[[str, list[dict[str, str]]], str]  # (model name, messages) -> reply text


def served_ask(server: AdapterServer, max_tokens: int, temperature: float = 0.0) -> Ask:
    """Ask a supervised server (vLLM, llama.cpp) as ``model``: the base or a loaded adapter."""

    def ask(model: str, messages: list[dict[str, str]]) -> str:
        chat = server.chat_model(model, max_tokens=max_tokens, temperature=temperature)
        return str(chat.invoke(messages).content)

    return ask


class AnswerScorer:
    """Probes ``(question, expected)``: passed when the reply contains ``expected`` (case-insensitive)."""

    def __init__(self, ask: Ask, probes: list[tuple[str, str]]) -> None:
        self.ask, self.probes = ask, probes

    def __call__(self, model: str) -> Score:
        per_task = {
            question: expected.lower() in self.ask(model, [{"role": "user", "content": question}]).lower()
            for question, expected in self.probes
        }
        return Score(model=model, passed=sum(per_task.values()), total=len(per_task), per_task=per_task)


def solve_messages(task: Task) -> list[dict[str, str]]:
    """The direct-prompting request for a coding task: its instructions and starting files."""
    files = "".join(f"\n\n{path}:\n```python\n{text}\n```" for path, text in task.files.items())
    return [
        {"role": "system", "content": SOLVE_PROMPT.format(file=task.solution_file)},
        {"role": "user", "content": task.instructions + files},
    ]


def extract_code(reply: str) -> str:
    """The first fenced code block of a reply (the whole reply when it has none)."""
    match = _CODE.search(reply)
    return (match.group(1) if match else reply).strip() + "\n"


class TaskScorer:
    """Coding tasks solved by direct prompting, judged by the evaluator's hidden tests (Docker sandboxes)."""

    def __init__(self, ask: Ask, tasks: list[Task], evaluator: Any) -> None:
        self.ask, self.tasks, self.evaluator = ask, tasks, evaluator

    def __call__(self, model: str) -> Score:
        per_task = {}
        for task in self.tasks:
            code = extract_code(self.ask(model, solve_messages(task)))
            per_task[task.id] = self.evaluator.evaluate_solution(task, code).passed
        return Score(model=model, passed=sum(per_task.values()), total=len(per_task), per_task=per_task)
