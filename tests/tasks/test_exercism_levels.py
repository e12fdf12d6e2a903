"""Exercism-format folders as suites: levels from ``.meta/config.json``, and exercises grouped in subfolders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentevo.tasks.suites import SuiteError, load_suite

LEAP = Path(__file__).resolve().parent / "data" / "exercism" / "leap"


def _exercise(root: Path, name: str, **config) -> Path:
    """A copy of the ``leap`` fixture under ``root/name``, its config extended with ``config``."""
    folder = root / name
    shutil.copytree(LEAP, folder)
    path = folder / ".meta" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return folder


def test_levels_come_from_the_exercise_config(tmp_path):
    _exercise(tmp_path, "a-level", level=1)
    _exercise(tmp_path, "b-track-difficulty", difficulty=7)  # Exercism's own key and 1-10 scale
    _exercise(tmp_path, "c-digits", level="2")
    _exercise(tmp_path, "d-label", level="short loops")
    _exercise(tmp_path, "e-none")
    tasks = {t.id.removeprefix("exercism/"): t for t in load_suite(f"exercism:{tmp_path}")}
    levels = {name: (t.metadata.get("level"), t.difficulty) for name, t in tasks.items()}
    assert levels == {
        "a-level": (1, 1),
        "b-track-difficulty": (7, 5),
        "c-digits": (2, 2),
        "d-label": ("short loops", 3),
        "e-none": (None, 3),
    }


def test_exercises_may_sit_in_groups(tmp_path):
    # An Exercism track's layout: exercises/<kind>/<slug>, with a shared folder that is no exercise.
    _exercise(tmp_path / "exercises" / "practice", "leap", level=1)
    _exercise(tmp_path / "exercises" / "concept", "leap-again", level=2)
    (tmp_path / "exercises" / "shared" / ".docs").mkdir(parents=True)
    tasks = load_suite(f"exercism:{tmp_path / 'exercises'}")
    assert [(t.id, t.metadata["level"]) for t in tasks] == [("exercism/leap-again", 2), ("exercism/leap", 1)]
    assert load_suite(f"exercism:{tmp_path / 'exercises' / 'practice'}") == tasks[1:]
    # The same slug in two groups is one id twice: an error that names it, never a silent overwrite.
    _exercise(tmp_path / "exercises" / "concept", "leap")
    with pytest.raises(SuiteError, match="duplicate task id 'exercism/leap'"):
        load_suite(f"exercism:{tmp_path / 'exercises'}")
