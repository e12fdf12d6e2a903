"""The evaluator's second round: no operator, helper or message lets a solution decide or learn its verdict.

Each class of hole gets hostile submissions against real tasks of every suite kind (built-in, HumanEval,
MBPP, Exercism, and a class exercise written for this: ``data/exercism-classes/clock``), evaluated in a
real sandbox. None may score; every canonical solution still passes; no feedback string quotes a value
of its task's hidden tests.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentevo.evaluate import Evaluator
from agentevo.sandbox import SandboxConfig, SandboxPool
from agentevo.tasks.model import Task
from agentevo.tasks.suites import load_suite
from tests.conftest import BENCHDATA
from tests.evaluate.test_judge import attack, expected_values, quoted_values

EXERCISES = Path(__file__).parents[1] / "tasks" / "data" / "exercism"
CLOCK = Path(__file__).parent / "data" / "exercism-classes" / "clock"


@pytest.fixture(scope="module")
def evaluator(sandbox_image):
    with SandboxPool(SandboxConfig(pool_size=4)) as pool:
        yield Evaluator(pool=pool)


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    """Tasks whose tests do arithmetic on results, call prompt helpers, compare objects, or quote values."""
    builtin = {t.id: t for t in load_suite("builtin")}
    humaneval = load_suite(f"humaneval:{BENCHDATA / 'humaneval'}")
    mbpp = load_suite(f"mbpp-sanitized:{BENCHDATA / 'mbpp' / 'sanitized-mbpp.json'}")
    exercism = {t.id: t for t in load_suite(f"exercism:{EXERCISES}")}
    chosen = [
        builtin["builtin/add"], builtin["builtin/square"],
        humaneval[4],  # abs(candidate(...) - expected) < 1e-6
        humaneval[32], humaneval[38], humaneval[50],  # checks that call poly / encode_cyclic / encode_shift
        mbpp[0], mbpp[5],
        *[t for t in mbpp if "math.isclose" in "\n".join(t.tests)][:1],
        exercism["exercism/word-count"], exercism["exercism/bank-account"], exercism["exercism/leap"],
        *load_suite(f"exercism:{CLOCK}"),
    ]  # fmt: skip
    return {t.id: t for t in chosen}


def evaluate_all(evaluator: Evaluator, pairs: list[tuple[Task, str]]) -> list:
    def one(pair):
        task, source = pair
        return evaluator.evaluate_solution(
            task.model_copy(update={"time_limit": min(task.time_limit, 8.0)}), source
        )

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, pairs))


# Each attack defines ENTRY; ``attack`` binds every public name of the task to it.
OPERATORS = '''
class Rigged:
    """Whatever the test computes with it comes out as a pass: 0 differences, every member, any item."""
    def __init__(self, *args, **kwargs): self.args = args
    def _zero(self, *other): return 0
    __sub__ = __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _zero
    __mod__ = __rmod__ = __pow__ = __rpow__ = __floordiv__ = __rfloordiv__ = __xor__ = __rxor__ = _zero
    def __abs__(self): return 0
    def __neg__(self): return 0
    def __contains__(self, item): return True
    def __getitem__(self, key): return key
    def __call__(self, *args, **kwargs): return args[0] if args else Rigged()
    def __getattr__(self, name): return self
    def __str__(self): return self.seen if hasattr(self, "seen") else ""
    def __setattr__(self, name, value): object.__setattr__(self, "seen", value)
def ENTRY(*args, **kwargs):
    return Rigged(*args)
'''
HELPERS = """
def poly(xs, x):
    return 0.0
def encode_cyclic(s):
    return s
def encode_shift(s):
    return s
def is_palindrome(s):
    return True
def ENTRY(*args, **kwargs):
    # a root of the solution's poly, and a decoder for its identity encoders
    return args[0] if args and isinstance(args[0], str) else 0.0 if args and isinstance(args[0], list) else -7
"""
EQUALITY = '''
class Agreeable:
    """Equal and unequal to everything: __eq__ and __ne__ always agree with whatever the test asserts."""
    def __init__(self, *args, **kwargs): self.args = args
    def __eq__(self, other): return True
    def __ne__(self, other): return True
    def __hash__(self): return 0
    def __add__(self, other): return Agreeable(*self.args, other)
    __sub__ = __radd__ = __add__
    def __repr__(self): return "Agreeable"
    def __getattr__(self, name): return lambda *a, **k: Agreeable(*a)
ENTRY = Agreeable
'''
STATELESS_EQUALITY = EQUALITY.replace(
    "def __init__(self, *args, **kwargs): self.args = args", "pass"
).replace("Agreeable(*self.args, other)", "Agreeable()")
ROUND_TRIP = """
class Box:
    def __init__(self, value): self.value = value
def ENTRY(*args, **kwargs):
    if args and isinstance(args[0], Box):
        return args[0].value
    return Box(args[0] if args else None)
"""
NONE_EQUALITY = """
class Clock:
    def __init__(self, *args): self.args = args
    def __eq__(self, other=None): return True
    def __ne__(self, other=None): return False
ENTRY = Clock
"""
ECHO = """
import sys
def ENTRY(*args, **kwargs):
    print(repr(args), file=sys.stderr)
    raise ValueError(f"I was given {args!r} {kwargs!r}")
"""
WRONG = "def ENTRY(*args, **kwargs):\n    return 'zz'\n"

ATTACKS = {
    "operators-on-a-handle": OPERATORS,
    "helpers-from-the-solution": HELPERS,
    "equality-by-the-solution": EQUALITY,
    "stateless-equality": STATELESS_EQUALITY,
    "opaque-round-trip": ROUND_TRIP,
    "equality-with-none": NONE_EQUALITY,
    "echo-the-arguments": ECHO,
    "wrong-plain-values": WRONG,
}


def test_canonical_solutions_pass(evaluator, tasks):
    chosen = [t for t in tasks.values() if t.canonical_solution]
    assert {t.suite for t in chosen} == {"builtin", "humaneval", "mbpp-sanitized", "exercism"}
    results = evaluate_all(evaluator, [(t, t.canonical_solution) for t in chosen])
    assert [(r.task_id, r.feedback) for r in results if not r.passed] == []


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_scores_zero(evaluator, tasks, name):
    results = evaluate_all(evaluator, [(t, attack(ATTACKS[name], t)) for t in tasks.values()])
    scored = {r.task_id: (r.score, r.feedback[:160]) for r in results if r.score > 0}
    assert scored == {}, f"{name} scored"
    leaks = {r.task_id: leaked for r in results if (leaked := quoted_values(r.feedback, tasks[r.task_id]))}
    assert leaks == {}, f"{name}: feedback quotes hidden values"


def test_the_leak_check_finds_quoted_values(tasks):
    """The check above is not vacuous: it finds the expected values that unittest would have quoted."""
    assert "08:00" in quoted_values("AssertionError: '' != '08:00'", tasks["exercism/clock"])
    assert "{'word': 1}" in quoted_values("AssertionError: {} != {'word': 1}", tasks["exercism/word-count"])
    assert expected_values(tasks["humaneval/HumanEval-4"]), "HumanEval/4 compares against literals"


def test_reasons_name_what_went_wrong_without_values(evaluator):
    task = Task(
        id="test/reasons", suite="test", instructions="-", entry_point="f", time_limit=20.0,
        tests=[
            "assert f('secret-input') == 'secret-expected'",
            "assert abs(f(1.5) - 2.25) < 1e-9",
            "assert f(7) == 49",
        ],
    )  # fmt: skip
    source = "class Box:\n    pass\ndef f(x):\n    if x == 7:\n        raise KeyError(x)\n    return Box()\n"
    result = evaluator.evaluate_solution(task, source)
    errors = [t.error for t in result.tests]
    assert "no plain-data form" in errors[0] and "return plain data" in errors[0]
    assert "value the solution returned" in errors[1]
    assert errors[2] == "KeyError: …"
    for value in ("secret", "2.25", "49", "1.5"):
        assert value not in result.feedback and all(value not in e for e in errors)


def test_assertion_messages_are_dropped(evaluator, tasks):
    word_count = tasks["exercism/word-count"]
    result = evaluator.evaluate_solution(word_count, "def count_words(sentence):\n    return {'zz': 1}\n")
    assert result.score == 0.0
    assert {t.error for t in result.tests} == {"AssertionError: an assertion of the test failed"}


def test_class_exercise_equality_and_none(evaluator):
    source = (
        "class Money:\n"
        "    def __init__(self, cents):\n"
        "        self.cents = cents\n"
        "    def __eq__(self, other=None):\n"
        "        return isinstance(other, Money) and other.cents == self.cents\n"
        "    def __hash__(self):\n"
        "        return hash(self.cents)\n"
    )
    tests = [
        "assert Money(5) == Money(5)",
        "assert Money(5) != Money(6)",
        "assert Money(5) != None and not (Money(5) == None)",
        "assert len({Money(1), Money(1)}) == 1",
    ]
    task = Task(
        id="test/objects", suite="test", instructions="-", tests=tests, time_limit=10.0, compare_objects=True
    )
    assert evaluator.evaluate_solution(task, source).passed
    strict = evaluator.evaluate_solution(task.model_copy(update={"compare_objects": False}), source)
    assert (
        strict.tests[0].status == "failed" and "no plain-data form" in strict.tests[0].error
    )  # a function task
    lying = source.replace("return isinstance(other, Money) and other.cents == self.cents", "return True")
    rigged = task.model_copy(
        update={"tests": ["assert Money(5) == Money(6)", "assert not (Money(5) != Money(6))"]}
    )
    result = evaluator.evaluate_solution(rigged, lying)
    assert result.score == 0.0  # the states 5 and 6 differ, whatever its __eq__ says


def test_mutated_subclass_arguments_come_back(evaluator):
    task = Task(
        id="test/counter", suite="test", instructions="-", entry_point="add", time_limit=10.0,
        tests=[
            "import collections\nc = collections.Counter('aab')\nadd(c, 'a')\nassert c == {'a': 3, 'b': 1}",
            "import collections\nd = collections.OrderedDict(x=1)\nadd(d, 'y')\nassert list(d) == ['x', 'y']",
        ],
    )  # fmt: skip
    source = "def add(counts, key):\n    counts[key] = counts.get(key, 0) + 1\n"
    result = evaluator.evaluate_solution(task, source)
    assert result.passed, result.feedback


def test_what_a_class_exercise_may_drive(evaluator):
    """Objects the test made take its data; what their methods hand back takes calls, not operands."""
    tests = [
        "assert str(Node(1) + 2) == 'Node(3)'",  # a made object takes the test's numbers
        "assert Node(1).child().set(5).value == 5",  # a method of a returned object takes arguments
        "assert 7 in Node(1).members()",  # a returned container is converted, never asked
        "assert abs(Node(1).half() - 0.5) < 1e-9",  # nor fed the expected value
    ]
    task = Task(
        id="test/drive", suite="test", instructions="-", tests=tests, time_limit=10.0, compare_objects=True
    )
    honest = (
        "class Node:\n"
        "    def __init__(self, value): self.value = value\n"
        "    def __add__(self, n): return Node(self.value + n)\n"
        "    def __repr__(self): return f'Node({self.value})'\n"
        "    def child(self): return Node(0)\n"
        "    def set(self, v):\n"
        "        self.value = v\n"
        "        return self\n"
        "    def members(self): return [7]\n"
        "    def half(self): return 0.5\n"
    )
    assert evaluator.evaluate_solution(task, honest).passed
    rigged = honest.replace("return [7]", "return Rigged()").replace("return 0.5", "return Rigged()")
    rigged += (
        "class Rigged:\n"
        "    def __contains__(self, item): return True\n"
        "    def __sub__(self, other): return 0\n"
    )
    result = evaluator.evaluate_solution(task, rigged)
    assert [t.status for t in result.tests] == ["passed", "passed", "failed", "failed"]
    assert all("value the solution returned" in t.error for t in result.tests[2:])
