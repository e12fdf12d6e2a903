"""HumanEval (Chen et al. 2021) from its ``HumanEval.jsonl.gz``.

One record becomes one Task (see docs/tasks.md):

* id ``humaneval/HumanEval-<n>``; the stub ``solution.py`` is the record's ``prompt`` (imports,
  signature and docstring, plus any helper functions it defines);
* ``test_setup`` is the prompt's own helpers (its imports and the functions it defines besides the
  entry point: ``poly``, ``encode_cyclic``, ``encode_shift``, ``is_palindrome``), then the record's
  ``test`` (it defines ``check(candidate)``, sometimes imports and ``METADATA``); the single test is
  ``check(<entry_point>)``. The helpers come from the task's text, compiled by the judge, so a check
  that calls ``poly`` calls the prompt's ``poly``, never a submission's redefinition of it. HumanEval's
  own harness runs the check in the submission's namespace, where a redefined helper wins; the
  canonical solutions keep the helpers unchanged, so they score the same either way;
* ``canonical_solution`` is ``prompt + canonical_solution``: exactly the program HumanEval runs.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from agentevo.tasks.model import Task
from agentevo.tasks.suites import SuiteError, find_file, read_jsonl, require

SUITE = "humaneval"
FILE_NAMES = ("HumanEval.jsonl.gz", "HumanEval.jsonl")
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")

INSTRUCTIONS = """\
Implement the Python function `{entry_point}` in the file `solution.py`.

`solution.py` already holds its signature and docstring (below). Complete the function so that it
does what the docstring says; keep its name and signature, and keep any other function the file
defines. Hidden tests will call `{entry_point}` from `solution.py`.

```python
{prompt}
```
"""


def task_from_record(record: dict[str, Any], *, where: str = "HumanEval record") -> Task:
    require(record, FIELDS, where=where)
    task_id, prompt, entry_point = str(record["task_id"]), record["prompt"], record["entry_point"]
    if not all(isinstance(record[field], str) for field in FIELDS[1:]):
        raise SuiteError(f"{where}: {', '.join(FIELDS[1:])} must be strings")
    return Task(
        id=f"{SUITE}/{task_id.replace('/', '-')}",
        suite=SUITE,
        instructions=INSTRUCTIONS.format(entry_point=entry_point, prompt=prompt.rstrip("\n")),
        files={"solution.py": prompt},
        entry_point=entry_point,
        test_setup=prompt_helpers(prompt, entry_point) + record["test"],
        tests=[f"check({entry_point})"],
        canonical_solution=prompt + record["canonical_solution"],
        difficulty=3,
        metadata={"source": "HumanEval", "task_id": task_id},
    )


def prompt_helpers(prompt: str, entry_point: str) -> str:
    """The prompt's imports and the functions it defines other than ``entry_point``, as source.

    A prompt normally parses (it ends in the entry point's docstring); one that stops at a bare signature
    is read with a ``pass`` body; one that still does not parse has no helpers to take.
    """
    for source in (prompt, prompt + "    pass\n"):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        kept = [
            node
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            or (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name != entry_point)
        ]
        return "".join((ast.get_source_segment(source, node) or "") + "\n\n" for node in kept)
    return ""


def _order(task: Task) -> tuple[int, str]:
    number = task.metadata["task_id"].rpartition("/")[2]
    return (int(number), "") if number.isdigit() else (1 << 30, task.id)


def load_humaneval(path: Path) -> list[Task]:
    """All HumanEval tasks in ``path`` (the .jsonl.gz, a plain .jsonl, or a folder holding one), by number."""
    file = find_file(Path(path), FILE_NAMES, suite=SUITE)
    tasks = [
        task_from_record(record, where=f"{file}: line {number}")
        for number, record in read_jsonl(file, suite=SUITE)
    ]
    if not tasks:
        raise SuiteError(f"suite {SUITE!r}: {file} holds no tasks")
    return sorted(tasks, key=_order)
