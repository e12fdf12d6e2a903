"""Suites: counts, conversion rules, stable splits, clear errors, and every reference solution passing
its own hidden tests while an empty solution fails them.

The reference checks use a tiny local runner with the evaluator's semantics (the solution file loaded
as the module ``solution``; for each test, a fresh namespace seeded with ``from solution import *``,
minus any name that shadows a builtin other than the entry point, then ``test_setup``, then the test
snippet; a test passes when it finishes without raising). One subprocess per chunk of tasks runs, for
each task, the reference solution and then the empty one, each test on its own; each task's modules
are forgotten before the next.
"""

from __future__ import annotations

import collections
import gzip
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentevo.tasks.builtin import load_builtin
from agentevo.tasks.model import Split, Task, split_of
from agentevo.tasks.suites import SUITES, EmptySelection, SuiteError, load_suite
from tests.conftest import BENCHDATA

BENCH = BENCHDATA
HUMANEVAL = BENCH / "humaneval"
MBPP = BENCH / "mbpp"
EXERCISM = Path(__file__).resolve().parent / "data" / "exercism"


@pytest.fixture(scope="module")
def suites() -> dict[str, list[Task]]:
    return {
        "builtin": load_suite("builtin"),
        "humaneval": load_suite(f"humaneval:{HUMANEVAL}"),
        "mbpp": load_suite(f"mbpp:{MBPP}"),
        "mbpp-sanitized": load_suite(f"mbpp-sanitized:{MBPP}"),
        "exercism": load_suite(f"exercism:{EXERCISM}"),
    }


# ----------------------------------------------------------------------------- counts and conversion


def test_counts_and_unique_ids(suites):
    counts = {name: len(tasks) for name, tasks in suites.items()}
    assert counts["humaneval"] == 164
    assert counts["mbpp"] == 974
    assert counts["mbpp-sanitized"] == 427
    assert counts["exercism"] == 3
    assert counts["builtin"] >= 30
    every = [task.id for tasks in suites.values() for task in tasks]
    assert len(every) == len(set(every))
    for name, tasks in suites.items():
        assert all(task.suite == name and task.id.startswith(f"{name}/") for task in tasks)


def test_builtin_suite_is_graded_and_complete(suites):
    tasks = suites["builtin"]
    by_difficulty = collections.Counter(task.difficulty for task in tasks)
    assert set(by_difficulty) == {1, 2, 3, 4, 5}
    assert by_difficulty[1] + by_difficulty[2] > len(tasks) / 2
    assert by_difficulty[1] >= 8
    assert [t.difficulty for t in tasks] == sorted(t.difficulty for t in tasks), "easy first"
    for task in tasks:
        assert 3 <= len(task.tests) <= 8, task.id
        assert task.canonical_solution and task.entry_point, task.id
        assert "`solution.py`" in task.instructions and task.entry_point in task.instructions, task.id
        assert task.solution_file == "solution.py" and set(task.files) <= {"solution.py"}
        assert task.time_limit <= 30
    assert load_builtin() == tasks  # the packaged data, read through importlib.resources


def test_humaneval_conversion(suites):
    tasks = suites["humaneval"]
    assert [t.id for t in tasks[:3]] == [
        "humaneval/HumanEval-0",
        "humaneval/HumanEval-1",
        "humaneval/HumanEval-2",
    ]
    assert tasks[-1].id == "humaneval/HumanEval-163"
    with gzip.open(HUMANEVAL / "HumanEval.jsonl.gz", "rt") as f:
        record = json.loads(f.readline())
    task = tasks[0]
    assert task.entry_point == record["entry_point"] == "has_close_elements"
    assert task.files == {"solution.py": record["prompt"]}
    # The prompt's imports and helpers, then HumanEval's check: a check's helpers are the prompt's own.
    assert task.test_setup == "from typing import List\n\n" + record["test"]
    assert task.tests == ["check(has_close_elements)"]
    assert task.canonical_solution == record["prompt"] + record["canonical_solution"]
    assert record["prompt"].strip() in task.instructions and "`solution.py`" in task.instructions
    # The file itself and a plain folder spec load the same tasks.
    assert load_suite(f"humaneval:{HUMANEVAL / 'HumanEval.jsonl.gz'}") == tasks


def test_mbpp_conversion(suites):
    full, sanitized = suites["mbpp"], suites["mbpp-sanitized"]
    assert [t.id for t in full[:2]] == ["mbpp/1", "mbpp/2"] and full[-1].id == "mbpp/974"
    assert sanitized[0].id == "mbpp-sanitized/2"
    assert load_suite(f"mbpp:{MBPP / 'mbpp.jsonl'}") == full
    assert load_suite(f"mbpp:{MBPP / 'sanitized-mbpp.json'}") == sanitized
    assert load_suite(f"mbpp-sanitized:{MBPP / 'sanitized-mbpp.json'}") == sanitized

    first = full[0]
    assert first.entry_point == "min_cost" and first.files == {} and len(first.tests) == 3
    assert first.tests[0] in first.instructions and first.tests[1] not in first.instructions
    assert "\r" not in first.canonical_solution
    assert first.metadata["mbpp_split"] == "prompt" and full[10].metadata["mbpp_split"] == "test"
    assert "challenge_tests" in full[10].metadata and all(len(t.tests) == 3 for t in full)

    by_id = {t.id: t for t in full + sanitized}
    # The entry point is the solution's function the first assert calls, not a builtin around it.
    assert by_id["mbpp-sanitized/2"].entry_point == "similar_elements"
    # Adaptations to the star-import namespace.
    for prefix in ("mbpp", "mbpp-sanitized"):
        assert by_id[f"{prefix}/798"].test_setup.startswith("from solution import _sum")
        assert by_id[f"{prefix}/596"].test_setup.startswith("import sys")
    assert sum(bool(t.metadata.get("setup_adaptations")) for t in full + sanitized) == 4
    # Setup code from the data is kept (and shown, since the agent must provide what it uses).
    assert "root = Node(1)" in by_id["mbpp/367"].test_setup and "Node(1)" in by_id["mbpp/367"].instructions
    assert by_id["mbpp-sanitized/82"].test_setup == "import math"  # test_imports
    assert sum(t.test_setup == "import math" for t in sanitized) == 13


def test_exercism_conversion(suites):
    tasks = suites["exercism"]
    assert [t.id for t in tasks] == ["exercism/bank-account", "exercism/leap", "exercism/word-count"]
    leap = tasks[1]
    assert leap.solution_file == "leap.py" and set(leap.files) == {"leap.py"}
    assert len(leap.tests) == 4 and all(t.startswith("_run_unittest('LeapTest', 'test_") for t in leap.tests)
    assert (
        "Calendars need" in leap.instructions and "leap year" in leap.instructions
    )  # introduction + instructions
    assert leap.metadata["blurb"].startswith("Determine")
    assert tasks[0].solution_file == "bank_account.py" and len(tasks[0].tests) == 4  # inherited setUp
    assert tasks[2].solution_file == "word_count.py" and "# Word Count" in tasks[2].instructions  # README.md
    # One exercise folder on its own is a suite of one.
    assert load_suite(f"exercism:{EXERCISM / 'leap'}") == [leap]


# ----------------------------------------------------------------------------- splits, filters, limits


@pytest.mark.slow
def test_splits_are_stable_and_documented(suites):
    # Pinned: a change here would silently move tasks between train and test.
    assert split_of("humaneval/HumanEval-0") == Split.validation
    assert split_of("mbpp/1") == Split.train
    assert split_of("builtin/add") == Split.train
    assert split_of("builtin/answer") == Split.test
    for tasks in suites.values():
        for task in tasks:
            assert task.split == split_of(task.id) == split_of(str(task.id))
    full = suites["mbpp"]
    shares = collections.Counter(task.split for task in full)
    assert 0.55 < shares[Split.train] / len(full) < 0.65
    assert 0.15 < shares[Split.validation] / len(full) < 0.25
    assert 0.15 < shares[Split.test] / len(full) < 0.25
    # The split filters partition the suite and keep its order.
    parts = {split: load_suite(f"mbpp:{MBPP}", split=split) for split in Split}
    assert sum(len(p) for p in parts.values()) == len(full)
    for split, part in parts.items():
        assert part == [t for t in full if t.split == split]


def test_limit_and_split_filters(suites):
    builtin = suites["builtin"]
    assert load_suite("builtin", limit=5) == builtin[:5]
    with pytest.raises(EmptySelection, match="--limit 0 selects no task"):
        load_suite("builtin", limit=0)
    assert load_suite("builtin", limit=10_000) == builtin
    test_split = load_suite(f"humaneval:{HUMANEVAL}", split="test")
    assert test_split and all(t.split == Split.test for t in test_split)
    assert load_suite(f"humaneval:{HUMANEVAL}", split=Split.test, limit=3) == test_split[:3]
    assert load_suite("  BUILTIN ") == builtin
    with pytest.raises(SuiteError, match="unknown split"):
        load_suite("builtin", split="dev")
    with pytest.raises(SuiteError, match="limit"):
        load_suite("builtin", limit=-1)


def test_a_selection_of_no_task_says_why_and_named_tasks_run_whatever_their_split():
    leap = f"exercism:{EXERCISM / 'leap'}"  # one task, in the test split
    with pytest.raises(EmptySelection) as empty:
        load_suite(leap, split="train")
    assert str(empty.value) == (
        f"suite {leap!r} has no task in the train split (its tasks by split: 1 test); "
        "use --split test or --split all"
    )
    notes: list[str] = []
    named = load_suite("miniwob:click-button,click-link", split="test", on_note=notes.append)
    assert [t.id for t in named] == ["miniwob/click-button", "miniwob/click-link"]
    assert notes == [
        "running the named tasks whatever their split: miniwob/click-button (train) is not in the test split"
    ]
    assert load_suite("miniwob", split="test") and "miniwob/click-button" not in {
        t.id for t in load_suite("miniwob", split="test")
    }


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bad_specs_give_clear_errors(tmp_path):
    cases = {
        "": "empty suite spec",
        "nope": "unknown suite 'nope'",
        "nope:/tmp": "unknown suite 'nope'",
        "humaneval": "needs a path",
        "mbpp:": "needs a path",
        f"humaneval:{tmp_path / 'missing'}": "does not exist",
        "builtin:/tmp": "takes no path",
        f"humaneval:{tmp_path}": "holds none of HumanEval.jsonl.gz",
        f"mbpp:{HUMANEVAL}": "holds none of mbpp.jsonl",
        f"mbpp-sanitized:{MBPP / 'mbpp.jsonl'}": "load it as 'mbpp:",
        f"exercism:{tmp_path}": "holds no exercise folders",
        f"exercism:{MBPP / 'mbpp.jsonl'}": "is not a folder",
    }
    for spec, message in cases.items():
        with pytest.raises(SuiteError, match=message.replace("(", r"\(")):
            load_suite(spec)
    for name in SUITES:
        assert name in str(pytest.raises(SuiteError, load_suite, "nope").value)


def test_malformed_data_names_the_line(tmp_path):
    good = json.dumps(
        {
            "task_id": "HumanEval/0",
            "prompt": "def f():\n",
            "canonical_solution": "    return 1\n",
            "test": "def check(c):\n    assert c() == 1\n",
            "entry_point": "f",
        }
    )
    _write(tmp_path / "he" / "HumanEval.jsonl", good + "\n\n{not json\n")
    with pytest.raises(SuiteError, match="malformed JSON on line 3"):
        load_suite(f"humaneval:{tmp_path / 'he'}")
    _write(tmp_path / "he" / "HumanEval.jsonl", good + "\n" + json.dumps({"task_id": "HumanEval/1"}) + "\n")
    with pytest.raises(SuiteError, match=r"line 2: missing field\(s\) prompt"):
        load_suite(f"humaneval:{tmp_path / 'he'}")
    _write(tmp_path / "he" / "HumanEval.jsonl", good + "\n")
    assert [t.id for t in load_suite(f"humaneval:{tmp_path / 'he'}")] == ["humaneval/HumanEval-0"]

    record = {
        "task_id": 5,
        "text": "Add.",
        "code": "def add(a, b):\r\n  return a + b",
        "test_list": ["assert add(1, 2) == 3"],
    }
    _write(
        tmp_path / "mbpp.jsonl", json.dumps(record) + "\n" + json.dumps({**record, "test_list": []}) + "\n"
    )
    with pytest.raises(SuiteError, match="line 2: test_list must be a non-empty list"):
        load_suite(f"mbpp:{tmp_path / 'mbpp.jsonl'}")
    _write(tmp_path / "sanitized-mbpp.json", "[{]")
    with pytest.raises(SuiteError, match="malformed JSON on line 1"):
        load_suite(f"mbpp-sanitized:{tmp_path}")

    _write(tmp_path / "ex" / "broken" / "README.md", "# Broken\n")
    _write(tmp_path / "ex" / "broken" / "broken.py", "")
    with pytest.raises(SuiteError, match="broken: expected exactly one unittest file"):
        load_suite(f"exercism:{tmp_path / 'ex'}")
    _write(tmp_path / "ex" / "broken" / "broken_test.py", "import unittest\n")
    with pytest.raises(SuiteError, match="defines no unittest.TestCase test methods"):
        load_suite(f"exercism:{tmp_path / 'ex'}")

    _write(
        tmp_path / "b.yaml",
        "tasks:\n  - {slug: a, instructions: x, tests: [pass]}\n  - {slug: a, instructions: y, tests: [pass]}\n",
    )
    with pytest.raises(SuiteError, match="task 2: duplicate slug 'a'"):
        load_builtin(tmp_path / "b.yaml")
    _write(tmp_path / "b.yaml", "tasks:\n  - {slug: a, instructions: x, tests: [], difficulty: 9}\n")
    with pytest.raises(SuiteError, match=r"task 1 \(a\)"):
        load_builtin(tmp_path / "b.yaml")


# ----------------------------------------------------------------------------- reference solutions

RUNNER = r"""
import builtins, importlib, json, signal, sys


class TimeLimit(BaseException):
    pass


def alarm(signum, frame):
    raise TimeLimit("time limit")


signal.signal(signal.SIGALRM, alarm)
jobs = json.loads(sys.stdin.read())
with open(sys.argv[1], "w") as out:
    for index, job in enumerate(jobs):
        for phase, folder in enumerate(job["folders"]):
            before = set(sys.modules)
            sys.path.insert(0, folder)
            importlib.invalidate_caches()
            results = []
            signal.setitimer(signal.ITIMER_REAL, job["time_limit"])
            try:
                for test in job["tests"]:
                    ns = {"__name__": "__hidden_test__"}
                    try:
                        exec("from solution import *", ns)
                        for name in [n for n in ns if n in builtins.__dict__ and n != job["entry_point"]]:
                            del ns[name]  # as the evaluator does: a solution may not shadow builtins for the tests
                        exec(job["setup"], ns)
                        exec(test, ns)
                    except TimeLimit:
                        raise
                    except BaseException as e:
                        results.append((type(e).__name__ + ": " + str(e))[:300])
                    else:
                        results.append(None)
            except TimeLimit:
                results = None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            sys.path.remove(folder)
            # Forget the solution, its aliases and whatever non-stdlib module it brought in.
            for name in set(sys.modules) - before:
                if name.partition(".")[0] not in sys.stdlib_module_names:
                    del sys.modules[name]
            out.write(json.dumps([index, phase, results]) + "\n")
            out.flush()
"""
CHUNK = 10  # tasks per runner process: a fresh interpreter per task would double the test's time


def _empty(task: Task) -> str:
    """What an agent that did nothing leaves: the stub when there is one, else an empty file."""
    return task.files.get(task.solution_file, "")


def run_tasks(tasks: list[Task]) -> list[tuple[list | None, list | None]]:
    """For each task, per-test results (None = passed, else the error) of its reference solution and
    of the empty one; None instead of a list when the phase ran out of time."""
    outcomes: list[list] = [[None, None] for _ in tasks]
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for i, task in enumerate(tasks):
            folders = []
            for name, source in (("reference", task.canonical_solution), ("empty", _empty(task))):
                folder = Path(tmp) / str(i) / name
                folder.mkdir(parents=True)
                (folder / "solution.py").write_text(source)
                folders.append(str(folder))
            limit = min(task.time_limit, 20)
            jobs.append(
                {
                    "folders": folders,
                    "setup": task.test_setup,
                    "tests": task.tests,
                    "entry_point": task.entry_point,
                    "time_limit": limit,
                }
            )
        out = Path(tmp) / "results.jsonl"
        try:
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", RUNNER, str(out)],
                input=json.dumps(jobs),
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=sum(2 * job["time_limit"] for job in jobs) + 10,
            )
        except subprocess.TimeoutExpired:
            pass  # a phase stuck outside Python code: what did not finish counts as failed
        for line in out.read_text().splitlines() if out.exists() else []:
            index, phase, results = json.loads(line)
            outcomes[index][phase] = results
    return [tuple(outcome) for outcome in outcomes]


def check_suite(tasks: list[Task]) -> None:
    assert tasks and all(task.canonical_solution is not None for task in tasks)
    chunks = [tasks[i : i + CHUNK] for i in range(0, len(tasks), CHUNK)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [outcome for chunk in pool.map(run_tasks, chunks) for outcome in chunk]
    reference_failures = {
        task.id: reference if reference is None else [r for r in reference if r]
        for task, (reference, _) in zip(tasks, outcomes, strict=True)
        if reference is None or any(reference)
    }
    empty_passes = [
        task.id
        for task, (_, empty) in zip(tasks, outcomes, strict=True)
        if empty is not None and not any(empty)
    ]
    assert not reference_failures, f"reference solutions failing (None = out of time): {reference_failures}"
    assert not empty_passes, f"empty solutions passing every test: {empty_passes}"


def test_runner_tells_pass_from_fail():
    base = {"suite": "builtin", "instructions": "x", "entry_point": "f", "test_setup": "import math"}
    good = Task(
        id="builtin/good",
        tests=["assert f() == math.pi", "assert f() > 3"],
        canonical_solution="import math\ndef f(): return math.pi",
        **base,
    )
    wrong = good.model_copy(update={"id": "builtin/wrong", "canonical_solution": "def f(): return 3.5"})
    slow = good.model_copy(
        update={"id": "builtin/slow", "canonical_solution": "def f():\n    while True: pass", "time_limit": 1}
    )
    stub = good.model_copy(update={"id": "builtin/stub", "files": {"solution.py": "def f(): return 4"}})
    outcomes = run_tasks([good, wrong, slow, stub])
    assert outcomes[0][0] == [None, None] and outcomes[0][1][0].startswith("NameError")
    assert outcomes[1][0][0].startswith("AssertionError") and outcomes[1][0][1] is None
    assert outcomes[2][0] is None  # out of time
    assert (
        outcomes[3][1][0].startswith("AssertionError") and outcomes[3][1][1] is None
    )  # the stub is the empty solution
    with pytest.raises(AssertionError, match="builtin/wrong"):
        check_suite([good, wrong])


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["builtin", "exercism", "humaneval", "mbpp-sanitized", "mbpp"])
def test_reference_solutions_pass_and_empty_ones_fail(suites, suite):
    check_suite(suites[suite])
