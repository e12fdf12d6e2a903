"""What a task is: instructions and files the agent sees, hidden tests it never sees."""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Split(str, Enum):
    """Stable splits: a task's split depends on its id alone (see ``split_of``)."""

    train = "train"
    validation = "validation"
    test = "test"


# Shares of the id-hash space: 60 % train, 20 % validation, 20 % test.
SPLIT_BOUNDS = ((Split.train, 60), (Split.validation, 80), (Split.test, 100))


def split_of(task_id: str) -> Split:
    """The split of a task id: sha256 of the id, mod 100, against SPLIT_BOUNDS. Never changes."""
    bucket = int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % 100
    return next(split for split, bound in SPLIT_BOUNDS if bucket < bound)


class Task(BaseModel):
    """One coding task.

    The agent gets ``instructions`` and ``files`` in its workspace and must leave its answer in
    ``solution_file``. The evaluator, in a fresh sandbox the agent never had, loads that file as the
    module ``solution``, runs ``test_setup`` and then each snippet of ``tests`` separately; a test
    passes when its snippet finishes without raising. The score is the fraction of tests passed.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Unique across suites, e.g. 'humaneval/HumanEval-12'.")
    suite: str
    instructions: str
    files: dict[str, str] = Field(default_factory=dict, description="Workspace-relative path -> content.")
    solution_file: str = "solution.py"
    entry_point: str | None = Field(None, description="The function the tests call, when there is one.")
    test_setup: str = Field("", description="Hidden code run before every test (imports, helpers).")
    tests: list[str] = Field(min_length=1, description="Hidden test snippets, each run on its own.")
    compare_objects: bool = Field(
        False,
        description="Whether the tests may compare, hash or test the truth of objects of the solution's own "
        "classes by the solution's own methods (class exercises). Otherwise results must be plain data.",
    )
    time_limit: float = Field(30.0, gt=0, description="Seconds for all hidden tests together.")
    difficulty: int = Field(1, ge=1, le=5)
    canonical_solution: str | None = Field(
        None, description="A known-good solution file, for checking the task itself."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def split(self) -> Split:
        return split_of(self.id)

    def public_view(self) -> dict[str, Any]:
        """What an agent may see: never the tests, the setup or the canonical solution."""
        return self.model_dump(
            include={"id", "suite", "instructions", "files", "solution_file", "entry_point", "difficulty"}
        )
