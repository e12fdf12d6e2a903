"""A ladder template: one family of coding tasks, and how one instance of it becomes a Task.

A template holds a statement and a reference solution, both ``string.Template`` texts over the
instance's parameters (``$k``), plus two draws: the parameters and the test inputs. An instance is
rendered in one go from one random stream, so its statement, stub, hidden tests and reference always
agree: the expected value of every test is what the rendered reference returns on that input.
"""

from __future__ import annotations

import ast
import copy
import string
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any

from agentevo.tasks.model import Task

SUITE = "ladder"
SOLUTION_FILE = "solution.py"
TIME_LIMIT = 10.0
INSTRUCTIONS = """\
In the file `solution.py`, write a function `{signature}` that {statement}

Example: `{call}` returns `{expected}`.
"""

Params = dict[str, Any]
Inputs = list[tuple[Any, ...]]


def no_params(rng: Random) -> Params:
    """For templates whose statement has no parameters: instances differ in their tests only."""
    return {}


@dataclass(frozen=True)
class Template:
    """One family of tasks. ``name`` is its slug; the entry point is the slug with ``_`` for ``-``.

    ``statement`` completes the sentence "write a function `f(...)` that ..."; ``reference`` is the
    whole ``solution.py``. ``inputs`` draws the argument tuples of the tests (the first becomes the
    example shown in the instructions, so typical values come first and edge cases last).
    """

    name: str
    statement: str
    reference: str
    inputs: Callable[[Random, Params], Inputs]
    params: Callable[[Random], Params] = no_params
    level: int = 0  # set by suite.templates() from the level module that lists the template
    transfer: bool = False  # held out whole: its instances are only ever in the test split

    @property
    def entry_point(self) -> str:
        return self.name.replace("-", "_")


def _call(entry_point: str, args: tuple[Any, ...]) -> str:
    return f"{entry_point}({', '.join(repr(arg) for arg in args)})"


def _signature(source: str, entry_point: str) -> str:
    """``name(arg, ...)`` of the entry point as the reference defines it."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return f"{entry_point}({ast.unparse(node.args)})"
    raise ValueError(f"ladder template {entry_point!r}: its reference defines no function {entry_point!r}")


def oracle(source: str, entry_point: str) -> Callable[..., Any]:
    """The reference's entry point, run in-process: our own generated code, never an agent's."""
    namespace: dict[str, Any] = {}
    exec(compile(source, SOLUTION_FILE, "exec"), namespace)  # noqa: S102 - the template's own reference
    return namespace[entry_point]


def _unique(inputs: Inputs) -> Inputs:
    return list({repr(args): args for args in inputs}.values())


@dataclass(frozen=True)
class Instance:
    """One rendered instance: its statement, its reference, and each test's input and expected value."""

    entry_point: str
    statement: str
    reference: str
    inputs: Inputs
    expected: list[Any]

    @property
    def tests(self) -> list[str]:
        """Plain-data asserts on the entry point, one per input, as MBPP's tests are."""
        return [
            f"assert {_call(self.entry_point, args)} == {value!r}"
            for args, value in zip(self.inputs, self.expected, strict=True)
        ]


def render(template: Template, rng: Random) -> Instance:
    """Draw an instance from ``rng``; the expected values are what its own reference returns."""
    params = template.params(rng)
    reference = string.Template(template.reference).substitute(params).strip("\n") + "\n"
    solve = oracle(reference, template.entry_point)
    inputs = _unique(template.inputs(rng, params))
    return Instance(
        entry_point=template.entry_point,
        statement=string.Template(template.statement).substitute(params),
        reference=reference,
        inputs=inputs,
        expected=[solve(*copy.deepcopy(args)) for args in inputs],
    )


def instance_task(template: Template, index: int, seed: int, *, task_id: str) -> Task:
    """Instance ``index`` of ``template`` under ``seed``: the same three always give the same Task."""
    rng = Random(f"{SUITE}/{seed}/{template.name}/{index}")
    instance = render(template, rng)
    signature = _signature(instance.reference, template.entry_point)
    return Task(
        id=task_id,
        suite=SUITE,
        instructions=INSTRUCTIONS.format(
            signature=signature,
            statement=instance.statement,
            call=_call(template.entry_point, instance.inputs[0]),
            expected=repr(instance.expected[0]),
        ),
        files={SOLUTION_FILE: f"def {signature}:\n    raise NotImplementedError\n"},
        entry_point=template.entry_point,
        tests=instance.tests,
        time_limit=TIME_LIMIT,
        difficulty=template.level,
        canonical_solution=instance.reference,
        metadata={
            "source": "ladder",
            "template": template.name,
            "level": template.level,
            "instance": index,
            "seed": seed,
            "transfer": template.transfer,
        },
    )
