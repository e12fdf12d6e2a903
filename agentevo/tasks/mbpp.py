"""MBPP (Austin et al. 2021): the full ``mbpp.jsonl`` (974 tasks) and ``sanitized-mbpp.json`` (427 tasks).

One record becomes one Task (see docs/tasks.md):

* id ``mbpp/<n>`` (full) or ``mbpp-sanitized/<n>`` (sanitized); no stub: the agent writes ``solution.py``;
* instructions: the problem text, the function name (taken from the first assert) and, as in MBPP's
  own prompt format, the first assert shown as an example;
* ``test_setup``: the record's ``test_setup_code`` (full) or ``test_imports`` (sanitized), preceded by
  two adaptations to the ``from solution import *`` namespace (both no-ops for the reference code):
  ``from solution import _name`` for each ``_``-prefixed name the asserts use (a star import skips
  those; task 798's function is ``_sum``), and the import statements of the reference code for each
  module the asserts use without importing it (task 596's asserts call ``sys.getsizeof``);
* one test per assert of ``test_list``; ``challenge_test_list`` goes to metadata, not to the tests;
* ``canonical_solution`` is the record's ``code`` with CRLF line ends made LF (as an import would).
"""

from __future__ import annotations

import ast
import builtins
import json
import warnings
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentevo.tasks.model import Task
from agentevo.tasks.suites import SuiteError, find_file, read_jsonl, require

FULL, SANITIZED = "mbpp", "mbpp-sanitized"
FULL_FIELDS = ("task_id", "text", "code", "test_list")
SANITIZED_FIELDS = ("task_id", "prompt", "code", "test_list")
_BUILTINS = frozenset(dir(builtins))

INSTRUCTIONS = """\
{text}

Write it in Python as the function `{entry_point}` in the file `solution.py`. Your code should pass tests like this:

```python
{example}
```
"""
SETUP_NOTE = """
Before the tests, this setup code runs in a namespace holding everything `solution.py` defines:

```python
{setup}
```
"""


def standard_split(task_id: int) -> str:
    """MBPP's own split of the full set: few-shot prompts 1-10, test 11-510, validation 511-600, train 601-974."""
    if task_id <= 10:
        return "prompt"
    if task_id <= 510:
        return "test"
    return "validation" if task_id <= 600 else "train"


def _parse(source: str) -> ast.Module:
    """ast.parse, quiet about the invalid escape sequences some MBPP code has (e.g. "\\d" in a regex)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        return ast.parse(source)


def _free_names(source: str) -> list[str]:
    """Names a snippet reads but never binds and that are not builtins, in order of first use."""
    loads: dict[str, None] = {}
    bound: set[str] = set()
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loads.setdefault(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return [name for name in loads if name not in bound and name not in _BUILTINS]


def _top_level_defs(code: str) -> list[str]:
    try:
        tree = _parse(code)
    except SyntaxError:
        return []
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def _imports_binding(code: str, names: set[str]) -> list[str]:
    """The reference code's top-level import statements, cut down to the aliases that bind ``names``."""
    try:
        tree = _parse(code)
    except SyntaxError:
        return []
    statements = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            aliases = [a for a in node.names if (a.asname or a.name).split(".")[0] in names]
            if aliases:
                node.names = aliases
                statements.append(ast.unparse(node))
    return statements


def entry_point_of(first_test: str, code: str) -> str | None:
    """The function the first assert calls: the first call to a name the reference code defines,
    else the first call to a non-builtin name."""
    calls = [
        node.func.id
        for node in ast.walk(_parse(first_test))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    defined = set(_top_level_defs(code))
    for name in calls:
        if name in defined:
            return name
    return next((name for name in calls if name not in _BUILTINS), None)


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _convert(
    *,
    suite: str,
    task_id: int,
    text: str,
    code: str,
    setup: str,
    tests: list[str],
    metadata: dict[str, Any],
    where: str,
) -> Task:
    if not tests or not all(isinstance(t, str) and t.strip() for t in tests):
        raise SuiteError(f"{where}: test_list must be a non-empty list of asserts")
    code, setup, tests = _lf(code), _lf(setup).strip("\n"), [_lf(t).strip() for t in tests]
    try:
        free = _free_names("\n".join([setup, *tests]))
        entry_point = entry_point_of(tests[0], code)
    except SyntaxError as e:
        raise SuiteError(f"{where}: a test or the setup code is not valid Python: {e}") from None
    private = [name for name in free if name.startswith("_") and not name.startswith("__")]
    adapt = [f"from solution import {', '.join(private)}"] if private else []
    adapt += _imports_binding(code, set(free) - set(_top_level_defs(code)))
    test_setup = "\n".join(part for part in [*adapt, setup] if part)
    instructions = INSTRUCTIONS.format(
        text=text.strip(), entry_point=entry_point or "the function the example calls", example=tests[0]
    )
    if setup:
        instructions += SETUP_NOTE.format(setup=setup)
    if adapt:
        metadata = {**metadata, "setup_adaptations": adapt}
    try:
        return Task(
            id=f"{suite}/{task_id}",
            suite=suite,
            instructions=instructions,
            entry_point=entry_point,
            test_setup=test_setup,
            tests=tests,
            canonical_solution=code,
            difficulty=2,
            metadata=metadata,
        )
    except ValidationError as e:
        raise SuiteError(f"{where}: {e}") from None


def _task_id(record: dict[str, Any], where: str) -> int:
    value = record["task_id"]
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise SuiteError(f"{where}: task_id must be a whole number, got {value!r}")
    return int(value)


def full_task(record: dict[str, Any], *, where: str = "MBPP record") -> Task:
    require(record, FULL_FIELDS, where=where)
    task_id = _task_id(record, where)
    metadata: dict[str, Any] = {"source": "MBPP", "task_id": task_id, "mbpp_split": standard_split(task_id)}
    if record.get("challenge_test_list"):
        metadata["challenge_tests"] = [_lf(t).strip() for t in record["challenge_test_list"]]
    return _convert(
        suite=FULL,
        task_id=task_id,
        text=record["text"],
        code=record["code"],
        setup=record.get("test_setup_code") or "",
        tests=record["test_list"],
        metadata=metadata,
        where=where,
    )


def sanitized_task(record: dict[str, Any], *, where: str = "sanitized MBPP record") -> Task:
    require(record, SANITIZED_FIELDS, where=where)
    task_id = _task_id(record, where)
    metadata: dict[str, Any] = {
        "source": "MBPP sanitized",
        "task_id": task_id,
        "mbpp_split": standard_split(task_id),
    }
    if record.get("source_file"):
        metadata["source_file"] = record["source_file"]
    return _convert(
        suite=SANITIZED,
        task_id=task_id,
        text=record["prompt"],
        code=record["code"],
        setup="\n".join(record.get("test_imports") or []),
        tests=record["test_list"],
        metadata=metadata,
        where=where,
    )


def _records(file: Path, suite: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, record) pairs from a JSON Lines file or a JSON array file."""
    if file.name.endswith((".jsonl", ".jsonl.gz")):
        return [(f"{file}: line {n}", record) for n, record in read_jsonl(file, suite=suite)]
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"suite {suite!r}: cannot read {file}: {e}") from None
    except json.JSONDecodeError as e:
        raise SuiteError(f"suite {suite!r}: {file}: malformed JSON on line {e.lineno}: {e.msg}") from None
    if not isinstance(data, list) or not all(isinstance(record, dict) for record in data):
        raise SuiteError(f"suite {suite!r}: {file} must hold a JSON array of objects")
    return [(f"{file}: record {i}", record) for i, record in enumerate(data)]


def _load(file: Path, *, want: str | None) -> list[Task]:
    records = _records(file, want or FULL)
    if not records:
        raise SuiteError(f"suite {want or FULL!r}: {file} holds no tasks")
    # The two formats differ in the problem field: full has "text", sanitized has "prompt".
    kind = SANITIZED if "prompt" in records[0][1] and "text" not in records[0][1] else FULL
    if want is not None and kind != want:
        other = "mbpp-sanitized" if kind == SANITIZED else "mbpp"
        raise SuiteError(f"suite {want!r}: {file} holds {other} records; load it as '{other}:{file}'")
    convert = sanitized_task if kind == SANITIZED else full_task
    tasks = [convert(record, where=where) for where, record in records]
    return sorted(tasks, key=lambda task: task.metadata["task_id"])


def load_mbpp(path: Path) -> list[Task]:
    """MBPP from ``path``: a file in either format (told apart by its records), or a folder holding
    ``mbpp.jsonl`` (the full set; use ``load_mbpp_sanitized`` for the folder's sanitized set)."""
    path = Path(path)
    return _load(find_file(path, ("mbpp.jsonl",), suite=FULL), want=FULL if path.is_dir() else None)


def load_mbpp_sanitized(path: Path) -> list[Task]:
    """Sanitized MBPP from ``sanitized-mbpp.json`` or a folder holding it."""
    return _load(find_file(Path(path), ("sanitized-mbpp.json",), suite=SANITIZED), want=SANITIZED)
