"""No shared interpreter between a solution and its verdict: hostile submissions against real tasks of every
suite kind (built-in, HumanEval, MBPP, Exercism), each evaluated in a real sandbox. None may score."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentevo.evaluate import ErrorKind, Evaluator
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.sandbox import SandboxConfig, SandboxPool
from agentevo.tasks.model import Task
from agentevo.tasks.suites import load_suite
from tests.conftest import BENCHDATA

EXERCISES = Path(__file__).parents[1] / "tasks" / "data" / "exercism"


@pytest.fixture(scope="module")
def evaluator(sandbox_image):
    with SandboxPool(SandboxConfig(pool_size=4)) as pool:
        yield Evaluator(pool=pool)


@pytest.fixture(scope="module")
def real_tasks() -> list[Task]:
    """Two tasks of each kind; their canonical solutions pass (checked below), so a 0 is the attack's."""
    builtin = {t.id: t for t in load_suite("builtin")}
    humaneval = load_suite(f"humaneval:{BENCHDATA / 'humaneval'}")
    mbpp = load_suite(f"mbpp-sanitized:{BENCHDATA / 'mbpp' / 'sanitized-mbpp.json'}")
    exercism = load_suite(f"exercism:{EXERCISES}")
    return [
        builtin["builtin/add"], builtin["builtin/square"], humaneval[0], humaneval[2], mbpp[0], mbpp[5],
        *exercism,
    ]  # fmt: skip


def public_names(task: Task) -> list[str]:
    """The names a task's tests use: its entry point, and what its starting stub defines."""
    names = [task.entry_point] if task.entry_point and task.entry_point.isidentifier() else []
    stub = task.files.get(task.solution_file, "")
    for node in ast.parse(stub).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name not in names:
            names.append(node.name)
    return names


def attack(prelude: str, task: Task) -> str:
    """``prelude`` must define ``ENTRY``; every public name of the task (and any other) becomes it."""
    bound = "".join(f"{name} = ENTRY\n" for name in public_names(task))
    return f"{prelude}\n{bound}\ndef __getattr__(name):\n    return ENTRY\n"


ANYTHING = '''
class Anything:
    """Equal to everything, hashes like anything, truthy, callable, every attribute is itself."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __hash__(self): return 0
    def __bool__(self): return True
    def __call__(self, *a, **k): return self
    def __getattr__(self, name): return self
    def __len__(self): return 1
    def __contains__(self, item): return True
    def __iter__(self): return iter([self])
    def __getitem__(self, key): return self
'''
NO_OP = "def ENTRY(*args, **kwargs):\n    return None\n"

ATTACKS = {
    "rigged-comparison": ANYTHING + "ENTRY = Anything()\n",
    "rigged-hashing": (
        "class Key:\n"
        "    def __hash__(self): return hash(True)\n"
        "    def __eq__(self, other): return True\n"
        "def ENTRY(*args, **kwargs):\n"
        "    return {Key(): Key()}\n"
    ),
    "rigged-truthiness": (
        "class Truth:\n"
        "    def __bool__(self): return True\n"
        "    def __eq__(self, other): return Truth()\n"
        "    __ne__ = __eq__\n"
        "def ENTRY(*args, **kwargs):\n"
        "    return Truth()\n"
    ),
    "builtin-subclasses": (
        "class S(str):\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "    __hash__ = str.__hash__\n"
        "class L(list):\n"
        "    def __eq__(self, other): return True\n"
        "class D(dict):\n"
        "    def __eq__(self, other): return True\n"
        "def ENTRY(*args, **kwargs):\n"
        "    return [S('rigged'), L([S('x')]), D(k=S('v'))][len(args) % 3]\n"
    ),
    "patch-test-framework": (
        "import unittest\n"
        "for _name in dir(unittest.TestCase):\n"
        "    if _name.startswith(('assert', 'fail')):\n"
        "        setattr(unittest.TestCase, _name, lambda *a, **k: None)\n"
        "unittest.TestResult.addFailure = unittest.TestResult.addError = lambda *a, **k: None\n" + NO_OP
    ),
    "patch-builtins": (
        "import builtins\n"
        "class _Never(BaseException): pass\n"
        "builtins.AssertionError = _Never\n"
        "builtins.isinstance = lambda *a: True\n"
        "builtins.len = lambda x: 3\n"
        "builtins.sorted = lambda *a, **k: [1, 2]\n"
        "builtins.abs = lambda x: 0\n" + NO_OP
    ),
    "patch-sys-modules": (
        "import sys, types\n"
        "fake = types.ModuleType('unittest')\n"
        "class TestCase:\n"
        "    def __getattr__(self, name): return lambda *a, **k: None\n"
        "fake.TestCase = TestCase\n"
        "fake.TestResult = TestCase\n"
        "fake.TestSuite = lambda tests: TestCase()\n"
        "for name in ('unittest', 'math', 'builtins', 'json'):\n"
        "    sys.modules[name] = fake\n" + NO_OP
    ),
    "rebind-caller-frames": (
        "import sys\n"
        "def _rebind():\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        for name in ('check', '_run_unittest', 'candidate', 'AssertionError'):\n"
        "            frame.f_globals[name] = lambda *a, **k: None\n"
        "        frame.f_globals['__builtins__'] = {'__import__': __import__}\n"
        "        frame = frame.f_back\n"
        "_rebind()\n"
        "def ENTRY(*args, **kwargs):\n"
        "    _rebind()\n"
        "    return None\n"
    ),
    "exit-in-call": "import os\ndef ENTRY(*args, **kwargs):\n    os._exit(0)\n",
    "replace-exit-hooks": (
        "import atexit, os, sys\n"
        "_exit = os._exit\n"
        "os._exit = sys.exit = lambda *a: _exit(0)\n"
        "sys.excepthook = lambda *a: _exit(0)\n"
        "atexit.register(lambda: _exit(0))\n"
        "def ENTRY(*args, **kwargs):\n"
        "    raise SystemExit(0)\n"
    ),
    "write-guessed-fds": (
        "import json, os\n"
        "def _spray():\n"
        "    reply = json.dumps({'r': 1, 'v': True}).encode()\n"
        "    frames = [b'I' + b'0' * 32, len(reply).to_bytes(4, 'big') + reply, b'T', b'passed\\n']\n"
        "    for fd in range(0, 64):\n"
        "        for data in frames:\n"
        "            try:\n"
        "                os.write(fd, data)\n"
        "            except OSError:\n"
        "                pass\n"
        "def ENTRY(*args, **kwargs):\n"
        "    _spray()\n"
        "    return None\n"
    ),
    # Invented: answer the judge with a well-formed but forged reply before the real one.
    "forge-protocol-reply": (
        "import json, os, stat, sys\n"
        "def ENTRY(*args, **kwargs):\n"
        "    out = int(sys.argv[2])  # the solution host's own reply pipe\n"
        "    for sequence in range(1, 6):\n"
        "        body = json.dumps({'r': sequence, 'v': True}).encode()\n"
        "        os.write(out, len(body).to_bytes(4, 'big') + body)\n"
        "    return None\n"
    ),
    # Invented: freeze the judge, then read its memory for the per-test nonce.
    "freeze-and-read-the-judge": (
        "import os, signal\n"
        "def ENTRY(*args, **kwargs):\n"
        "    judge = os.getppid()\n"
        "    for what in ('mem', 'environ', 'fd/3'):\n"
        "        try:\n"
        "            open(f'/proc/{judge}/{what}', 'rb').read(16)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os.kill(judge, signal.SIGSTOP)\n"
        "    return None\n"
    ),
}
TAMPERING = {"forge-protocol-reply", "freeze-and-read-the-judge"}


def test_canonical_solutions_of_the_chosen_tasks_pass(evaluator, real_tasks):
    assert len({t.suite for t in real_tasks}) == 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: evaluator.evaluate_solution(t, t.canonical_solution), real_tasks))
    assert [r.task_id for r in results if not r.passed] == []


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_scores_zero_on_every_suite_kind(evaluator, real_tasks, name):
    def one(task: Task):
        timed = task.model_copy(update={"time_limit": min(task.time_limit, 5.0)})
        return evaluator.evaluate_solution(timed, attack(ATTACKS[name], task))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, real_tasks))
    tasks_by_id = {t.id: t for t in real_tasks}
    scored = {
        r.task_id: (r.score, r.error_kind, r.feedback[:160]) for r in results if r.score > 0 or r.passed
    }
    assert scored == {}, f"{name} scored"
    leaks = {
        r.task_id: leaked for r in results if (leaked := quoted_values(r.feedback, tasks_by_id[r.task_id]))
    }
    assert leaks == {}, f"{name}: feedback quotes hidden values"
    if name in TAMPERING:
        assert {r.error_kind for r in results} == {ErrorKind.tampering}, [r.feedback for r in results]


def test_what_cannot_cross_is_a_failed_test_with_a_reason(evaluator):
    task = Task(
        id="test/crossing", suite="test", instructions="-", entry_point="f", time_limit=20.0,
        tests=["assert list(f()) == [1]", "assert f() == 1", "assert f() == [1]"],
    )  # fmt: skip
    endless = evaluator.evaluate_solution(task, "def f():\n    while True:\n        yield 1\n")
    assert endless.error_kind == ErrorKind.tests_failed and endless.tests[0].status == "failed"
    assert "endless iterator cannot cross" in endless.tests[0].error
    opaque = evaluator.evaluate_solution(task, "class Box:\n    pass\ndef f():\n    return Box()\n")
    assert all(t.status == "failed" for t in opaque.tests)
    assert (
        "object of the solution's" in opaque.tests[1].error and "no plain-data form" in opaque.tests[1].error
    )
    assert "return plain data" in opaque.tests[1].error
    cyclic = evaluator.evaluate_solution(task, "def f():\n    x = [1]\n    x.append(x)\n    return x\n")
    assert "contains itself" in cyclic.tests[2].error


def test_calls_keep_python_semantics_across_the_boundary(evaluator):
    task = Task(
        id="test/semantics", suite="test", instructions="-", entry_point="f", time_limit=20.0,
        tests=[
            "xs = [3, 1, 2]\nf.sort_in_place(xs)\nassert xs == [1, 2, 3]",  # in-place mutation comes back
            "assert apply(lambda v: v * 2, 21) == 42",  # the test's function is called back
            "try:\n    f.fail()\nexcept ValueError as exc:\n    assert exc.args == ('no',)\nelse:\n    raise AssertionError",
            "from solution import Oops\ntry:\n    f.oops()\nexcept Oops:\n    pass\nelse:\n    raise AssertionError",
            "assert list(f.squares(4)) == [0, 1, 4, 9] and next(iter(f.squares(2))) == 0",
            "assert type(f.counts('aab')) is dict and f.counts('aab') == {'a': 2, 'b': 1}",
            "assert f.Tree(1).v == 1",  # objects stay in the solution's process; their attributes cross
            # A large argument goes once while unchanged; changes on either side are seen by the other.
            (
                "big = list(range(5000, 0, -1))\nassert all(f.first(big) == 5000 for _ in range(50))\n"
                "big.append(-1)\nassert f.last(big) == -1\nf.sort_in_place(big)\nassert big[0] == -1 and f.first(big) == -1"
            ),
        ],
    )  # fmt: skip
    source = (
        "import collections\n"
        "class Oops(KeyError):\n    pass\n"
        "class f:\n"
        "    sort_in_place = staticmethod(lambda xs: xs.sort())\n"
        "    fail = staticmethod(lambda: (_ for _ in ()).throw(ValueError('no')))\n"
        "    squares = staticmethod(lambda n: (i * i for i in range(n)))\n"
        "    counts = staticmethod(collections.Counter)\n"
        "    first = staticmethod(lambda xs: xs[0])\n"
        "    last = staticmethod(lambda xs: xs[-1])\n"
        "    class Tree:\n"
        "        def __init__(self, v):\n"
        "            self.v = v\n"
        "    @staticmethod\n"
        "    def oops():\n"
        "        raise Oops('k')\n"
        "def apply(fn, x):\n"
        "    return fn(x)\n"
    )
    result = evaluator.evaluate_solution(task, source)
    assert result.passed, result.feedback
    assert [t.status for t in result.tests] == ["passed"] * 8


def test_tampering_is_kept_in_the_results(tmp_path, evaluator, real_tasks):
    task = real_tasks[0]
    verdict = evaluator.evaluate_solution(task, attack(ATTACKS["forge-protocol-reply"], task))
    assert verdict.error_kind == ErrorKind.tampering and verdict.score == 0.0
    assert "interfered" in verdict.feedback
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.add(
            ResultRow(
                run_id="r", agent_id="child", task_id=task.id, passed=False, error_kind=verdict.error_kind
            )
        )
        rows = store.rows("r")
        assert [row.error_kind for row in rows] == [ErrorKind.tampering]
        assert store.summary("r")["child"].error_kinds == {"tampering": 1}


# -- hidden values in feedback ------------------------------------------------------------------


def expected_values(task: Task) -> set[str]:
    """How each literal compared in the task's tests is written (``x == 5``, ``assertEqual(a, 5)``), also
    inside a unittest file that the test setup carries as a string."""
    found: set[str] = set()
    for source in [task.test_setup, *task.tests]:
        for tree in _trees(source):
            for node in ast.walk(tree):
                found |= _compared(node)
    return {form for form in found if len(form) >= 3}


def _trees(source: str) -> list[ast.AST]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    inner = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return [tree, *(t for text in inner if "\n" in text for t in _trees(text))]


def _compared(node: ast.AST) -> set[str]:
    operands: list[ast.AST] = []
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr.startswith("assert")
    ):
        operands = list(node.args)
    forms: set[str] = set()
    for operand in operands:
        try:
            value = ast.literal_eval(operand)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, (str, bytes)):
            forms.update({repr(value), value if isinstance(value, str) else value.decode("utf-8", "replace")})
        elif not isinstance(value, bool):
            forms.add(repr(value))
    return forms


def quoted_values(feedback: str, task: Task) -> list[str]:
    return [form for form in expected_values(task) if form in feedback]
