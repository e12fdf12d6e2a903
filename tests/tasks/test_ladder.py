"""The ladder suite: deterministic generation, its size and levels, its two kinds of held-out split, and its
tasks checked both ways - every reference passes and every stub and trivial answer fails.

All 700+ tasks are checked in-process (the generated tests are plain asserts, run here the way the judge runs
them: a namespace holding the solution's names, then the snippet). One instance of every template, and the
trivial answers on a few, also go through the real evaluator in its sandbox.
"""

from __future__ import annotations

import ast
import collections
import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentevo.evaluate import Evaluator
from agentevo.sandbox import SandboxConfig, SandboxPool
from agentevo.tasks.ladder import generate_ladder, templates
from agentevo.tasks.ladder.suite import INSTANCES, SEED
from agentevo.tasks.model import Split, Task
from agentevo.tasks.suites import SuiteError, load_suite

TRIVIAL_RETURNS = ("None", "0", '""')  # and the first argument, where there is one
FINGERPRINT = (
    "import hashlib; from agentevo.tasks.ladder import generate_ladder; "
    "print(hashlib.sha256(repr([t.model_dump() for t in generate_ladder()]).encode()).hexdigest())"
)


@pytest.fixture(scope="module")
def ladder() -> list[Task]:
    return load_suite("ladder")


def _by_template(tasks: list[Task]) -> dict[str, list[Task]]:
    grouped: dict[str, list[Task]] = collections.defaultdict(list)
    for task in tasks:
        grouped[task.metadata["template"]].append(task)
    return grouped


def _trivial_answers(task: Task) -> list[str]:
    """``solution.py`` files that return a constant, or the first argument, whatever they are given."""
    header = task.files["solution.py"].splitlines()[0]
    arguments = ast.parse(header + " pass").body[0].args.args
    returns = [*TRIVIAL_RETURNS, *(arguments[0].arg for _ in arguments[:1])]
    return [f"{header}\n    return {value}\n" for value in returns]


def _passed(task: Task, source: str) -> list[bool]:
    """Each test's outcome with ``source`` as solution.py, run in-process as the judge runs it."""
    names: dict = {}
    exec(compile(source, "solution.py", "exec"), names)  # noqa: S102 - our generated code
    outcomes = []
    for test in task.tests:
        try:
            exec(test, dict(names))  # noqa: S102
        except Exception:  # noqa: BLE001 - any error fails the test, as in the judge
            outcomes.append(False)
        else:
            outcomes.append(True)
    return outcomes


# ----------------------------------------------------------------------------- generation


@pytest.mark.slow
def test_deterministic_from_the_seed():
    first = generate_ladder(SEED)
    assert generate_ladder(SEED) == first
    other = generate_ladder(SEED + 1)
    assert sum(a.instructions != b.instructions for a, b in zip(first, other, strict=True)) > len(first) / 2
    # Not tied to this interpreter: processes with other hash seeds draw the very same suite.
    fingerprints = {
        subprocess.run(
            [sys.executable, "-c", FINGERPRINT],
            env=dict(os.environ, PYTHONHASHSEED=hash_seed),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert fingerprints == {hashlib.sha256(repr([t.model_dump() for t in first]).encode()).hexdigest()}


def test_size_levels_and_metadata(ladder):
    grouped = _by_template(ladder)
    assert len(ladder) >= 600 and len(grouped) >= 40
    assert len({t.id for t in ladder}) == len(ladder)
    assert [t.difficulty for t in ladder] == sorted(t.difficulty for t in ladder), "easy first"
    levels = collections.Counter(t.metadata["level"] for t in ladder)
    assert set(levels) == {1, 2, 3, 4, 5} and all(count >= 100 for count in levels.values())
    for name, tasks in grouped.items():
        assert len(tasks) == INSTANCES, name
        assert len({t.instructions for t in tasks}) == INSTANCES, name  # instances differ
    for task in ladder:
        assert task.suite == "ladder" and task.id.startswith("ladder/")
        assert task.difficulty == task.metadata["level"]
        assert task.entry_point and f"`{task.entry_point}(" in task.instructions
        assert 5 <= len(task.tests) <= 10 and all(
            t.startswith(f"assert {task.entry_point}(") for t in task.tests
        )
        assert task.tests[0].partition("assert ")[2].partition(" == ")[0] in task.instructions  # the example
    assert load_suite("ladder", split="test", limit=3) == [t for t in ladder if t.split is Split.test][:3]
    with pytest.raises(SuiteError, match="takes no path"):
        load_suite("ladder:/tmp")


def test_two_kinds_of_held_out_split(ladder):
    grouped = _by_template(ladder)
    transfer = {name for name, tasks in grouped.items() if tasks[0].metadata["transfer"]}
    assert {t.name for t in templates() if t.transfer} == transfer
    assert {t.level for t in templates() if t.transfer} == {1, 2, 3, 4, 5}  # some at every level
    by_split = {split: [t for t in ladder if t.split is split] for split in Split}
    seen_in_training = {t.metadata["template"] for t in by_split[Split.train]}
    # Transfer: whole templates held out; no train or validation task came from them.
    assert not transfer & seen_in_training
    assert not transfer & {t.metadata["template"] for t in by_split[Split.validation]}
    assert {t.metadata["template"] for t in by_split[Split.test]} >= transfer
    # In-distribution: every other template is trained on, and its test instances are new ones.
    assert seen_in_training == set(grouped) - transfer
    in_distribution = [t for t in by_split[Split.test] if not t.metadata["transfer"]]
    assert len(in_distribution) >= 100 and len(by_split[Split.test]) - len(in_distribution) >= 90
    trained = {t.instructions for t in by_split[Split.train]}
    assert not any(t.instructions in trained for t in in_distribution)


# ----------------------------------------------------------------------------- every task, in-process


def test_every_reference_passes_and_stub_and_trivial_answers_fail(ladder):
    for task in ladder:
        assert all(_passed(task, task.canonical_solution)), task.id
        assert not any(_passed(task, task.files["solution.py"])), task.id
        for answer in _trivial_answers(task):
            assert not all(_passed(task, answer)), f"{task.id}: {answer!r} passes every test"


# ----------------------------------------------------------------------------- the real evaluator


@pytest.fixture(scope="module")
def evaluator(sandbox_image):
    with SandboxPool(SandboxConfig(pool_size=2)) as pool:
        yield Evaluator(pool=pool)


def _evaluate(evaluator: Evaluator, pairs: list[tuple[Task, str]]) -> list:
    with ThreadPoolExecutor(2) as threads:
        return list(threads.map(lambda pair: evaluator.evaluate_solution(*pair), pairs))


def test_references_pass_in_the_real_evaluator(evaluator, ladder, capsys):
    # One instance of every template (the first of each): the judge's plain-data crossing, not just Python.
    firsts = [tasks[0] for tasks in _by_template(ladder).values()]
    started = time.monotonic()
    results = _evaluate(evaluator, [(t, t.canonical_solution) for t in firsts])
    with capsys.disabled():
        print(
            f"\nladder references: {sum(r.passed for r in results)}/{len(results)}, {time.monotonic() - started:.0f} s"
        )
    assert [(r.task_id, r.feedback[:300]) for r in results if not r.passed] == []
    assert len(results) == len(templates())


def test_stubs_and_trivial_answers_fail_in_the_real_evaluator(evaluator, ladder):
    # The first task of each level: its stub and each trivial answer score below 1.
    firsts = [next(t for t in ladder if t.metadata["level"] == level) for level in range(1, 6)]
    pairs = [(t, source) for t in firsts for source in [t.files["solution.py"], *_trivial_answers(t)]]
    results = _evaluate(evaluator, pairs)
    assert [r.task_id for r in results if r.passed or r.score == 1.0] == []
    assert len(results) == len(pairs) >= 20
