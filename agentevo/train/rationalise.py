"""STaR rationalisation: a task no sample solved is tried again with a hint, and a verified answer is trained on
under the prompt without the hint.

STaR (Zelikman et al., 2022) shows the model the correct answer of a problem it failed, keeps the re-attempts
that reach it, and trains on them with the hint taken out: the model learns to produce unaided what it could only
produce with help. For coding tasks the hint is the task's reference solution when the suite ships one
(HumanEval, MBPP and the built-in suite do), else the failed attempt with the evaluator's feedback on it; never
the hidden tests, and a hint that would quote a line of them is not given. A hinted answer counts only when the
evaluator's hidden tests pass on it in a fresh sandbox; the recorded episode then holds the original prompt and
the verified code, marked with the hint's kind, so the dataset card counts such rows apart. Only train-split
tasks are ever rationalised: a held-out task's reference solution must never reach weights scored on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from agentevo.tasks.model import Split, Task
from agentevo.train.config import HintKind, TrainConfig
from agentevo.train.scoring import extract_code

Ask = Callable[[list[dict[str, str]]], str]  # messages -> reply text
Message = dict[str, str]
REFERENCE_HINT = (
    "Hint: a correct {file} is shown below. Study it, then reply with your own complete {file}.\n"
    "```python\n{code}\n```"
)
FEEDBACK_HINT = (
    "Hint: this earlier {file} failed the hidden tests.\n```python\n{code}\n```\n"
    "The tests reported: {feedback}\nFix it and reply with the complete corrected {file}."
)
MIN_QUOTE = 10  # characters: shorter test lines (`x = 1`) are too common to mean a test was quoted


class Hint(BaseModel):
    kind: HintKind
    text: str


class Rationalised(BaseModel):
    """A hinted answer the evaluator verified: what is recorded under the hint-free prompt."""

    task_id: str
    hint: HintKind
    code: str
    tries: int = Field(description="Hinted tries it took (at most train.rationalise_tries).")
    score: float

    @property
    def reply(self) -> str:
        """What is recorded as the reply: the verified code alone, fenced as the solve prompt asks for it."""
        return f"```python\n{self.code}```"


class RationaliseRecord(BaseModel):
    """What one sampling round's rationalisation did."""

    tasks_tried: int = Field(0, description="Unsolved train-split tasks re-attempted with a hint.")
    tasks_passed: int = Field(0, description="Of those, tasks a hinted answer passed: one row source each.")
    tries: int = Field(0, description="Hinted model calls, each judged by the evaluator.")
    by_hint: dict[str, int] = Field(default_factory=dict, description="Passed tasks by hint kind.")
    no_hint: int = Field(0, description="Unsolved tasks with no hint to give (no reference, no feedback).")
    heldout_skipped: int = Field(0, description="Unsolved tasks outside the train split: never hinted.")


def quotes_tests(text: str, task: Task) -> bool:
    """Whether ``text`` contains a line of the task's hidden tests (then it must not reach the model)."""
    lines = {line.strip() for test in task.tests for line in test.splitlines()}
    return any(line in text for line in lines if len(line) >= MIN_QUOTE)


def make_hint(task: Task, failed_code: str, feedback: str, kinds: list[HintKind]) -> Hint | None:
    """The first of ``kinds`` the task offers that quotes no hidden test; None when there is none."""
    for kind in kinds:
        if kind is HintKind.reference and task.canonical_solution:
            text = REFERENCE_HINT.format(file=task.solution_file, code=task.canonical_solution.strip())
        elif kind is HintKind.feedback and feedback.strip():
            text = FEEDBACK_HINT.format(
                file=task.solution_file, code=failed_code.strip(), feedback=feedback.strip()
            )
        else:
            continue
        if not quotes_tests(text, task):
            return Hint(kind=kind, text=text)
    return None


def hinted(messages: list[Message], hint: Hint) -> list[Message]:
    """The request with the hint after the last user turn: what the model reads, never what is recorded."""
    *head, last = messages
    return [*head, {**last, "content": f"{last['content']}\n\n{hint.text}"}]


def rationalise_task(
    ask: Ask,
    task: Task,
    messages: list[Message],
    failed: tuple[str, str],
    evaluator: Any,
    config: TrainConfig,
    record: RationaliseRecord,
) -> Rationalised | None:
    """Up to ``config.rationalise_tries`` hinted answers to ``messages`` until the evaluator passes one.

    ``failed`` is the last failed attempt (its code, the evaluator's feedback on it); each failed hinted try
    replaces it, so a feedback hint follows the latest attempt. Returns None for a held-out task, a task with
    no hint to give, or when no hinted answer passed: nothing is recorded for those.
    """
    if task.split is not Split.train:
        record.heldout_skipped += 1
        return None
    code, feedback = failed
    tries = 0
    while tries < config.rationalise_tries and (hint := make_hint(task, code, feedback, config.hints)):
        tries += 1
        record.tries += 1
        record.tasks_tried += tries == 1
        code = extract_code(ask(hinted(messages, hint)))
        verdict = evaluator.evaluate_solution(task, code)
        if verdict.passed:
            record.tasks_passed += 1
            record.by_hint[hint.kind.value] = record.by_hint.get(hint.kind.value, 0) + 1
            return Rationalised(task_id=task.id, hint=hint.kind, code=code, tries=tries, score=verdict.score)
        feedback = verdict.feedback
    record.no_hint += tries == 0
    return None
