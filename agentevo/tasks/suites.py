"""Suites of tasks, named by a spec string: ``builtin``, ``ladder``, ``humaneval:PATH``, ``mbpp:PATH``, ...

``load_suite(spec)`` is the one entry point. Every suite comes back in its natural, deterministic
order (the built-in file's order, the ladder by level, HumanEval and MBPP by task number, Exercism by folder
name); the ``split`` filter uses ``Task.split`` (a hash of the id, see ``agentevo.tasks.model.split_of``) and
``limit`` keeps the first N tasks after filtering; tasks a spec names run whatever their split. Anything wrong
with a spec or a data file raises ``SuiteError`` with a message that names the problem, and so does a selection of
no task (``EmptySelection``).
"""

from __future__ import annotations

import gzip
import importlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentevo.tasks.model import Split, Task


class SuiteError(ValueError):
    """A suite cannot be loaded: unknown name, missing file, malformed data. The message says which."""


class EmptySelection(SuiteError):
    """The suite, split and limit select no task: the message says why and which options select some."""


# name -> (what PATH is, "module:function" of its loader). The loader takes the Path (nothing for PACKAGED).
SUITES: dict[str, tuple[str, str]] = {
    "builtin": (
        "the built-in suite shipped in the package (no PATH)",
        "agentevo.tasks.builtin:load_builtin",
    ),
    "ladder": (
        "the graded task ladder, generated in the package: 5 levels, held-out instances and templates (no PATH)",
        "agentevo.tasks.ladder:load_ladder",
    ),
    "humaneval": (
        "HumanEval: HumanEval.jsonl.gz (or .jsonl), or a folder that holds it",
        "agentevo.tasks.humaneval:load_humaneval",
    ),
    "mbpp": (
        (
            "MBPP: mbpp.jsonl (full, 974 tasks) or sanitized-mbpp.json (sanitized, 427 tasks), "
            "or a folder that holds mbpp.jsonl (full)"
        ),
        "agentevo.tasks.mbpp:load_mbpp",
    ),
    "mbpp-sanitized": (
        "sanitized MBPP: sanitized-mbpp.json, or a folder that holds it",
        "agentevo.tasks.mbpp:load_mbpp_sanitized",
    ),
    "exercism": (
        "Exercism-style exercises: a folder of exercise folders, or one exercise folder",
        "agentevo.tasks.exercism:load_exercism",
    ),
    "miniwob": (
        "MiniWoB++ web tasks in the sandboxed browser: all of them, or only :TASK,TASK,... (no path)",
        "agentevo.tasks.miniwob:load_miniwob",
    ),
}
# Suites that come with the package and take no argument.
PACKAGED = frozenset({"builtin", "ladder"})
# Suites whose optional argument selects tasks instead of naming a path; their loader takes it as a string.
SELECTION_SUITES = frozenset({"miniwob"})
# Suites played in the sandboxed browser (``agentevo.web``) rather than scored by hidden tests.
WEB_SUITES = frozenset({"miniwob"})


def describe_suites() -> str:
    """One line per suite spec, for help texts and error messages."""
    return "\n".join(f"  {name}{_argument(name)}  - {what}" for name, (what, _) in SUITES.items())


def _argument(name: str) -> str:
    return "" if name in PACKAGED else "[:TASK,...]" if name in SELECTION_SUITES else ":PATH"


def is_web_suite(spec: str) -> bool:
    """Whether ``spec`` names a suite of web tasks (played in the browser sandbox, scored by the page)."""
    return spec.strip().partition(":")[0].strip().lower() in WEB_SUITES


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split ``name[:PATH]`` into the suite name and its path (``~`` expanded); check both."""
    if not isinstance(spec, str) or not spec.strip():
        raise SuiteError(f"empty suite spec; expected one of:\n{describe_suites()}")
    name, sep, raw = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in SUITES:
        raise SuiteError(f"unknown suite {name!r} in spec {spec!r}; expected one of:\n{describe_suites()}")
    if name in PACKAGED:
        if raw.strip():
            raise SuiteError(f"the {name} suite takes no path, got {spec!r}")
        return name, None
    if name in SELECTION_SUITES:
        return name, None
    if not sep or not raw.strip():
        raise SuiteError(f"suite {name!r} needs a path: '{name}:PATH' where PATH is {SUITES[name][0]}")
    path = Path(raw.strip()).expanduser()
    if not path.exists():
        raise SuiteError(f"suite {name!r}: {path} does not exist")
    return name, path


def load_suite(
    spec: str,
    *,
    split: Split | str | None = None,
    limit: int | None = None,
    on_note: Callable[[str], None] = lambda note: None,
) -> list[Task]:
    """The tasks of a suite, in its natural order, optionally one split only and at most ``limit`` of them.

    Tasks the spec names (``miniwob:click-button``) run whatever their split, since a user who names a task
    means it; ``on_note`` hears one line that says so. A selection of no task raises :class:`EmptySelection`
    (why, and what selects some) rather than making an empty run that looks like a finished one.
    """
    name, path = parse_spec(spec)
    wanted = _split(split)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise SuiteError(f"limit must be a non-negative integer, got {limit!r}")
    tasks = _load(name, path, spec)
    if wanted is not None and _named(name, spec):
        _note_other_splits(tasks, wanted, on_note)
    elif wanted is not None:
        tasks = _in_split(tasks, wanted, spec)
    if limit == 0:
        raise EmptySelection("--limit 0 selects no task; give --limit 1 or more, or leave it out for all")
    return tasks if limit is None else tasks[:limit]


def _split(split: Split | str | None) -> Split | None:
    try:
        return None if split is None else Split(split)
    except ValueError:
        raise SuiteError(f"unknown split {split!r}; expected one of {[s.value for s in Split]}") from None


def _load(name: str, path: Path | None, spec: str) -> list[Task]:
    """Every task of the suite (the named ones only, for a selection suite given names)."""
    module_name, function_name = SUITES[name][1].split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    if name in SELECTION_SUITES:
        tasks = loader(spec.strip().partition(":")[2])
    else:
        tasks = loader() if path is None else loader(path)
    check_unique_ids(tasks, where=spec)
    if not tasks:
        raise EmptySelection(f"suite {spec!r} holds no task")
    return tasks


def _named(name: str, spec: str) -> bool:
    """Whether the spec names its tasks one by one (``miniwob:click-button,click-tab``)."""
    return name in SELECTION_SUITES and bool(spec.strip().partition(":")[2].strip())


def _note_other_splits(tasks: list[Task], wanted: Split, on_note: Callable[[str], None]) -> None:
    elsewhere = [f"{task.id} ({task.split.value})" for task in tasks if task.split != wanted]
    if elsewhere:
        on_note(
            f"running the named tasks whatever their split: {', '.join(elsewhere)} "
            f"{'is' if len(elsewhere) == 1 else 'are'} not in the {wanted.value} split"
        )


def _in_split(tasks: list[Task], wanted: Split, spec: str) -> list[Task]:
    """The tasks of split ``wanted``; none is an error that names the splits that have some."""
    chosen = [task for task in tasks if task.split == wanted]
    if chosen:
        return chosen
    counts = Counter(task.split.value for task in tasks)
    held = ", ".join(f"{count} {split}" for split, count in sorted(counts.items()))
    fixes = " or ".join(f"--split {split}" for split in [*sorted(counts), "all"])
    raise EmptySelection(
        f"suite {spec!r} has no task in the {wanted.value} split (its tasks by split: {held}); use {fixes}"
    )


def check_unique_ids(tasks: list[Task], *, where: str) -> None:
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise SuiteError(f"{where}: duplicate task id {task.id!r}")
        seen.add(task.id)


def find_file(path: Path, names: tuple[str, ...], *, suite: str) -> Path:
    """``path`` itself when it is a file, else the first of ``names`` inside the folder ``path``."""
    if path.is_file():
        return path
    for name in names:
        if (path / name).is_file():
            return path / name
    raise SuiteError(f"suite {suite!r}: {path} holds none of {', '.join(names)}")


def read_jsonl(path: Path, *, suite: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line of a JSONL file, gzip-compressed or not."""
    opener = gzip.open if path.name.endswith(".gz") else open
    records = []
    try:
        with opener(path, "rt", encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SuiteError(
                        f"suite {suite!r}: {path}: malformed JSON on line {number}: {e.msg}"
                    ) from None
                if not isinstance(record, dict):
                    raise SuiteError(f"suite {suite!r}: {path}: line {number} is not a JSON object")
                records.append((number, record))
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise SuiteError(f"suite {suite!r}: cannot read {path}: {e}") from None
    return records


def require(record: dict[str, Any], fields: tuple[str, ...], *, where: str) -> None:
    missing = [field for field in fields if field not in record]
    if missing:
        raise SuiteError(f"{where}: missing field(s) {', '.join(missing)}")
