"""Exercism-style exercises: a folder of exercise folders, maybe in groups (or one exercise folder).

An exercise folder holds instructions (``.docs/instructions.md``, with ``.docs/introduction.md`` and
``.docs/instructions.append.md`` when present; else ``README.md`` or ``instructions.md``), one stub
``<module>.py`` and a unittest file ``<module>_test.py`` that imports from ``<module>``. When
``.meta/config.json`` lists ``files.solution`` / ``files.test`` / ``files.example``, those win.
The reference solution, when there is one, is ``.meta/example.py`` (or ``.meta/exemplar.py``).

One exercise becomes one Task (see docs/tasks.md): id ``exercism/<folder name>``, the stub as its only
file and its ``solution_file``, and one test per test method. ``test_setup`` makes ``<module>`` an
alias of the module ``solution``, runs the unittest file as the module ``<module>_test`` and defines
``_run_unittest(class, method)``, which runs one test method and raises AssertionError with
unittest's report unless it passes. A ``level`` (or, as Exercism's track config names it,
``difficulty``) in ``.meta/config.json`` becomes ``metadata["level"]``, so results can be grouped by
it, and sets ``difficulty`` (clamped to 1-5) when it is a whole number.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentevo.tasks.model import Task
from agentevo.tasks.suites import SuiteError

SUITE = "exercism"
LEVEL_KEYS = ("level", "difficulty")  # where .meta/config.json may say how hard the exercise is
DEFAULT_DIFFICULTY = 3
MAX_DEPTH = 3  # folders of folders of exercises: enough for a track's exercises/<kind>/<slug>

INSTRUCTIONS = """\
Solve this exercise in Python by editing `{stub}`. Hidden unit tests will import your code from the \
module `{module}` (as in `from {module} import ...`), so keep the names that `{stub}` defines.

{docs}
"""

SETUP = '''\
# Exercism adapter: the unittest file imports `{module}`, which is the solution module.
import sys as _sys
import types as _types
import unittest as _unittest

import solution as _solution

_sys.modules[{module!r}] = _solution
_test_module = _types.ModuleType({test_module!r})
_test_module.__file__ = {test_file!r}
_sys.modules[{test_module!r}] = _test_module
exec(compile({source!r}, {test_file!r}, "exec"), _test_module.__dict__)


def _run_unittest(case, method):
    """Run one test method of the unittest file; raise AssertionError with its report unless it passes."""
    result = _unittest.TestResult()
    _unittest.TestSuite([getattr(_test_module, case)(method)]).run(result)
    problems = result.failures + result.errors + [(t, "unexpected success") for t in result.unexpectedSuccesses]
    if problems:
        raise AssertionError("\\n".join(report for _, report in problems))
'''


def _fail(folder: Path, problem: str) -> SuiteError:
    return SuiteError(f"suite {SUITE!r}: exercise {folder}: {problem}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"suite {SUITE!r}: cannot read {path}: {e}") from None


def _config(folder: Path) -> dict[str, Any]:
    path = folder / ".meta" / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(_read(path))
    except json.JSONDecodeError as e:
        raise _fail(folder, f".meta/config.json: malformed JSON on line {e.lineno}: {e.msg}") from None
    return config if isinstance(config, dict) else {}


def _listed(folder: Path, config: dict[str, Any], kind: str) -> Path | None:
    """The first file of ``files.<kind>`` in the exercise's config, when it names one that exists."""
    files = config.get("files")
    names = files.get(kind) if isinstance(files, dict) else None
    if isinstance(names, list) and names and isinstance(names[0], str) and (folder / names[0]).is_file():
        return folder / names[0]
    return None


def _level(config: dict[str, Any]) -> int | str | None:
    """The exercise's level from its config: a whole number (``"2"`` counts as 2) or a label, else None."""
    value = next((config[key] for key in LEVEL_KEYS if key in config), None)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _difficulty(level: int | str | None) -> int:
    return min(max(level, 1), 5) if isinstance(level, int) else DEFAULT_DIFFICULTY


def _test_and_stub(folder: Path, config: dict[str, Any]) -> tuple[Path, Path]:
    test = _listed(folder, config, "test")
    if test is None:
        tests = sorted(folder.glob("*_test.py")) or sorted(folder.glob("test_*.py"))
        if len(tests) != 1:
            found = ", ".join(p.name for p in tests) or "none"
            raise _fail(folder, f"expected exactly one unittest file '<module>_test.py', found {found}")
        test = tests[0]
    stub = _listed(folder, config, "solution")
    if stub is None:
        prefix = (
            test.stem.removesuffix("_test")
            if test.stem.endswith("_test")
            else test.stem.removeprefix("test_")
        )
        candidates = (
            [folder / f"{prefix}.py"]
            if (folder / f"{prefix}.py").is_file()
            else [
                p
                for p in sorted(folder.glob("*.py"))
                if p != test and not p.stem.startswith("test_") and not p.stem.endswith("_test")
            ]
        )
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise _fail(folder, f"expected one stub '{prefix}.py' next to {test.name}, found {found}")
        stub = candidates[0]
    if not stub.stem.isidentifier():
        raise _fail(folder, f"the stub {stub.name} is not an importable module name")
    return test, stub


def _docs(folder: Path) -> str:
    parts = [
        folder / ".docs" / name for name in ("introduction.md", "instructions.md", "instructions.append.md")
    ]
    if not parts[1].is_file():
        parts = [folder / "README.md"] if (folder / "README.md").is_file() else [folder / "instructions.md"]
    texts = [_read(p).strip() for p in parts if p.is_file()]
    if not any(texts):
        raise _fail(folder, "no instructions: expected .docs/instructions.md, README.md or instructions.md")
    return "\n\n".join(t for t in texts if t)


def _test_methods(source: str, test_file: str, folder: Path) -> list[tuple[str, str]]:
    """(class, method) for each test method of each TestCase class, in source order."""
    try:
        tree = ast.parse(source, filename=test_file)
    except SyntaxError as e:
        raise _fail(folder, f"{test_file} is not valid Python: {e}") from None
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def base_names(node: ast.ClassDef) -> list[str]:
        return [
            b.id if isinstance(b, ast.Name) else b.attr
            for b in node.bases
            if isinstance(b, (ast.Name, ast.Attribute))
        ]

    def is_case(name: str, seen: frozenset[str] = frozenset()) -> bool:
        node = classes.get(name)
        if node is None or name in seen:
            return False
        return any(b.endswith("TestCase") or is_case(b, seen | {name}) for b in base_names(node))

    def methods(name: str, seen: frozenset[str] = frozenset()) -> list[str]:
        node = classes.get(name)
        if node is None or name in seen:
            return []
        own = [
            f.name
            for f in node.body
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name.startswith("test")
        ]
        inherited = [m for b in base_names(node) for m in methods(b, seen | {name})]
        return list(dict.fromkeys(own + inherited))

    return [(name, method) for name in classes if is_case(name) for method in methods(name)]


def exercise_task(folder: Path) -> Task:
    """The Task of one exercise folder."""
    folder = Path(folder)
    config = _config(folder)
    test, stub = _test_and_stub(folder, config)
    source = _read(test)
    cases = _test_methods(source, test.name, folder)
    if not cases:
        raise _fail(folder, f"{test.name} defines no unittest.TestCase test methods")
    example = _listed(folder, config, "example") or _listed(folder, config, "exemplar")
    example = example or next(
        (p for p in (folder / ".meta" / "example.py", folder / ".meta" / "exemplar.py") if p.is_file()), None
    )
    module = stub.stem
    setup = SETUP.format(module=module, test_module=test.stem, test_file=test.name, source=source)
    metadata: dict[str, Any] = {
        "source": "Exercism-style",
        "slug": folder.name,
        "module": module,
        "test_file": test.name,
    }
    if isinstance(config.get("blurb"), str):
        metadata["blurb"] = config["blurb"]
    level = _level(config)
    if level is not None:
        metadata["level"] = level
    try:
        return Task(
            id=f"{SUITE}/{folder.name}",
            suite=SUITE,
            instructions=INSTRUCTIONS.format(stub=stub.name, module=module, docs=_docs(folder)),
            files={stub.name: _read(stub)},
            solution_file=stub.name,
            test_setup=setup,
            tests=[f"_run_unittest({case!r}, {method!r})" for case, method in cases],
            compare_objects=_defines_class(_read(stub), example),
            difficulty=_difficulty(level),
            canonical_solution=_read(example) if example else None,
            metadata=metadata,
        )
    except ValidationError as e:
        raise _fail(folder, str(e)) from None


def _defines_class(stub: str, example: Path | None) -> bool:
    """A class exercise: its stub or its example defines a class at top level.

    Only then may the tests compare the solution's own objects (``Task.compare_objects``); a function
    exercise keeps the strict rules, so its results must be plain data.
    """
    sources = [stub, _read(example)] if example else [stub]
    for source in sources:
        try:
            if any(isinstance(node, ast.ClassDef) for node in ast.parse(source).body):
                return True
        except SyntaxError:
            continue
    return False


def _is_exercise(folder: Path) -> bool:
    return (
        (folder / ".meta" / "config.json").is_file()
        or any(folder.glob("*_test.py"))
        or any(folder.glob("test_*.py"))
    )


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _exercise_folders(folder: Path, depth: int) -> list[Path]:
    """The exercises at or under ``folder``: itself when it is one, or when it has no subfolder to look in
    but holds Python files (so a broken exercise is reported as such); else those of its subfolders, e.g.
    Exercism's ``exercises/practice/<slug>`` and ``exercises/concept/<slug>``. A folder with neither
    subfolders nor Python files (a track's ``exercises/shared``) is no exercise."""
    subfolders = _subfolders(folder)
    if _is_exercise(folder) or depth == 0:
        return [folder]
    if not subfolders:
        return [folder] if any(folder.glob("*.py")) else []
    return [exercise for sub in subfolders for exercise in _exercise_folders(sub, depth - 1)]


def load_exercism(path: Path) -> list[Task]:
    """Every exercise at or under ``path``: the folder itself when it is one exercise, else each exercise
    folder below it (groups of exercises may nest up to ``MAX_DEPTH`` deep), by path."""
    path = Path(path)
    if not path.is_dir():
        raise SuiteError(f"suite {SUITE!r}: {path} is not a folder")
    if not _is_exercise(path) and not _subfolders(path):
        raise SuiteError(f"suite {SUITE!r}: {path} holds no exercise folders")
    return [exercise_task(folder) for folder in _exercise_folders(path, MAX_DEPTH)]
