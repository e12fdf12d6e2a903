"""The built-in suite: small Python tasks of graded difficulty, shipped in the package as YAML.

``builtin_tasks.yaml`` (next to this module) holds ``defaults`` (Task fields applied to every task)
and ``tasks``: a list of entries, each a ``slug`` plus Task fields. An entry becomes the Task with
id ``builtin/<slug>`` and suite ``builtin``. The file's order is the suite's order (easy first).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agentevo.tasks.model import Task
from agentevo.tasks.suites import SuiteError

SUITE = "builtin"
DATA_FILE = "builtin_tasks.yaml"
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _read_default() -> tuple[str, str]:
    resource = resources.files("agentevo.tasks").joinpath(DATA_FILE)
    try:
        return resource.read_text(encoding="utf-8"), f"agentevo/tasks/{DATA_FILE}"
    except OSError as e:  # a broken install: the package data is missing
        raise SuiteError(f"suite {SUITE!r}: cannot read the packaged {DATA_FILE}: {e}") from None


def parse_builtin(text: str, *, where: str) -> list[Task]:
    """The tasks of a built-in-format YAML document; every problem is a SuiteError naming the entry."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SuiteError(f"suite {SUITE!r}: {where}: malformed YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise SuiteError(f"suite {SUITE!r}: {where}: expected a mapping with a 'tasks' list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise SuiteError(f"suite {SUITE!r}: {where}: 'defaults' must be a mapping")
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, entry in enumerate(data["tasks"], start=1):
        tasks.append(_task(entry, defaults, where=f"{where}: task {number}", seen=seen))
    if not tasks:
        raise SuiteError(f"suite {SUITE!r}: {where}: no tasks")
    return tasks


def _task(entry: Any, defaults: dict[str, Any], *, where: str, seen: set[str]) -> Task:
    if not isinstance(entry, dict):
        raise SuiteError(f"suite {SUITE!r}: {where}: expected a mapping")
    fields = {**defaults, **entry}
    slug = fields.pop("slug", None)
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise SuiteError(
            f"suite {SUITE!r}: {where}: 'slug' must be lower-case words joined by '-', got {slug!r}"
        )
    if slug in seen:
        raise SuiteError(f"suite {SUITE!r}: {where}: duplicate slug {slug!r}")
    seen.add(slug)
    if "id" in fields or "suite" in fields:
        raise SuiteError(
            f"suite {SUITE!r}: {where} ({slug}): 'id' and 'suite' come from the slug; remove them"
        )
    try:
        return Task.model_validate({"id": f"{SUITE}/{slug}", "suite": SUITE, **fields})
    except ValidationError as e:
        raise SuiteError(f"suite {SUITE!r}: {where} ({slug}): {e}") from None


def load_builtin(path: Path | None = None) -> list[Task]:
    """The built-in suite (or, given ``path``, a YAML file in the same format), in file order."""
    if path is None:
        text, where = _read_default()
    else:
        try:
            text, where = Path(path).read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as e:
            raise SuiteError(f"suite {SUITE!r}: cannot read {path}: {e}") from None
    return parse_builtin(text, where=where)
