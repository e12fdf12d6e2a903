"""Self-play proposals: the backbone writes a new practice task in the style of the train split's tasks.

R-Zero and Absolute Zero let the model pose its own problems; what keeps that honest is verification
(:mod:`agentevo.train.selfplay`). Here is only the asking: a request held to :class:`ProposedTask` through
``response_format`` (:func:`agentevo.llm.structured.ask_structured`), with a few train-split tasks shown as JSON in
the same shape, and the answer turned into a :class:`~agentevo.tasks.model.Task` whose hidden tests are the
proposal's own ``assert call == expected`` lines. Calls and expected values must be Python literals around one call
of the entry point, checked by ``ast`` on the host (never run here): anything else is a schema mismatch, which
``ask_structured`` shows the model once.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable
from random import Random

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, field_validator, model_validator

from agentevo.llm.structured import ask_structured
from agentevo.tasks.model import Split, Task, split_of
from agentevo.train.sampling import EQUALITY

SUITE = "selfplay"
PROPOSE_PROMPT = (
    "You write new Python practice tasks. A task is a function name, a statement that asks for that function "
    "and shows one example call, a reference solution (the whole solution.py), and 3 to 5 tests, each a call "
    "of the function with literal arguments and the literal value the reference returns. Write a task that is "
    "new: not one of the examples, but in their style and at their level. Answer with one JSON object."
)


class ProposedTest(BaseModel):
    """One hidden test: ``assert <call> == <expected>``."""

    call: str = Field(max_length=120, description="e.g. add_constant(12)")
    expected: str = Field(max_length=80, description="e.g. 78")

    @field_validator("expected")
    @classmethod
    def _literal(cls, value: str) -> str:
        _literal_source(value)
        return value


class ProposedTask(BaseModel):
    """What the backbone is asked for (the schema of its answer)."""

    entry_point: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,39}$", max_length=40)
    statement: str = Field(min_length=10, max_length=400)
    reference: str = Field(min_length=10, max_length=600)
    tests: list[ProposedTest] = Field(min_length=3, max_length=5)

    @model_validator(mode="after")
    def _calls(self) -> ProposedTask:
        for test in self.tests:
            _check_call(test.call, self.entry_point)
        return self

    def asserts(self) -> list[str]:
        return [f"assert {t.call} == {t.expected}" for t in self.tests]


def _literal_source(text: str) -> None:
    try:
        ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"{text!r} is not a Python literal") from None


def _check_call(text: str, entry_point: str) -> None:
    """``text`` must be one call of ``entry_point`` with literal arguments (no names, no other calls)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"{text!r} is not a Python call") from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        raise ValueError(f"{text!r} is not a call of {entry_point}(...)")
    for arg in [*node.args, *(k.value for k in node.keywords)]:
        _literal_source(ast.unparse(arg))


def example_of(task: Task) -> ProposedTask | None:
    """A train task in the proposal's shape (None when its tests are not all ``assert call == literal``)."""
    tests = [
        {"call": m["call"], "expected": m["value"]} for t in task.tests if (m := EQUALITY.match(t.strip()))
    ]
    if not task.entry_point or not task.canonical_solution or len(tests) != len(task.tests):
        return None
    try:
        return ProposedTask(
            entry_point=task.entry_point,
            statement=task.instructions.strip()[:400],
            reference=task.canonical_solution.strip()[:600],
            tests=[ProposedTest(**t) for t in tests[:5]],
        )
    except ValueError:
        return None


def examples_of(tasks: list[Task]) -> list[ProposedTask]:
    """The train-split tasks that can be shown as examples (held-out ones never are)."""
    return [e for t in tasks if t.split is Split.train and (e := example_of(t)) is not None]


def propose_messages(examples: list[ProposedTask]) -> list[SystemMessage | HumanMessage]:
    """The examples as JSON, and the names the new task must not take (a small model otherwise copies one)."""
    shown = "\n\n".join(json.dumps(e.model_dump(), indent=1) for e in examples)
    taken = ", ".join(e.entry_point for e in examples)
    ask = f"Your new task, with a function that is not {taken}:"
    return [SystemMessage(PROPOSE_PROMPT), HumanMessage(f"Examples:\n\n{shown}\n\n{ask}")]


def propose(invoke: Callable, examples: list[ProposedTask], rng: Random, shown: int) -> ProposedTask:
    """One proposal, asked with ``shown`` examples drawn by ``rng``; StructuredOutputError when none came."""
    messages = propose_messages(rng.sample(examples, min(shown, len(examples))))
    return ask_structured(invoke, messages, ProposedTask)


def train_id(proposal: ProposedTask) -> str:
    """A task id for the proposal that falls in the train split: the dataset builders train only on those.

    Ids are hashed into splits (``split_of``), so the first suffix whose id lands in train is taken (60 % do).
    """
    digest = hashlib.sha256(proposal.model_dump_json().encode()).hexdigest()[:10]
    base = f"{SUITE}/{proposal.entry_point.replace('_', '-')}-{digest}"
    return next(f"{base}-{n}" for n in range(1000) if split_of(f"{base}-{n}") is Split.train)


def as_task(proposal: ProposedTask) -> Task:
    """The proposal as a task: its statement to solve, a stub, its asserts as hidden tests, its reference."""
    return Task(
        id=train_id(proposal),
        suite=SUITE,
        instructions=proposal.statement.strip() + "\n",
        files={"solution.py": f"def {proposal.entry_point}(*args):\n    raise NotImplementedError\n"},
        entry_point=proposal.entry_point,
        tests=proposal.asserts(),
        time_limit=10.0,
        canonical_solution=proposal.reference.strip() + "\n",
        metadata={"source": SUITE},
    )
