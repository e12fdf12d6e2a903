"""A scripted comparison for the end-to-end tests: two arms that are the same seed agent on a scripted chat model
(not a backbone: control flow, no model randomness), so its statistics are known exactly (an A/A comparison).

The scripted model answers every episode with a ``create`` tool call writing ``add(a, b)``, then ``submit`` (the
seed on its tool loop: one-function tasks are otherwise answered directly): on
the built-in train split's first two tasks (add, square) every attempt passes ``add`` and fails ``square``.

    python -m tests.compare.scripted ARCHIVES RUN_ID    # ARM and ROW lines as it goes, then DONE and the JSON
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from agentevo.compare import Arm, Comparison, compare, parse_arm
from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ResultRow
from agentevo.gateway import ChatModelBackend
from agentevo.llm.scripted import ScriptedChatModel
from tests.agents.scripts import call, loop_seed

REPLIES = [
    call("create", 1, path="solution.py", content="def add(a, b):\n    return a + b\n"),
    call("submit", 2),
]
ARM_NAMES = ["base", "again"]  # both the seed on its tool loop (create, then submit: two calls an episode)
TASKS, ATTEMPTS = ["builtin/add", "builtin/square"], 2


@contextlib.contextmanager
def scripted(arm: Arm, settings: AgentevoConfig) -> Iterator[ChatModelBackend]:
    """A fresh scripted model per arm: one episode at a time, two calls each, so the replies stay in step."""
    yield ChatModelBackend(ScriptedChatModel(replies=REPLIES, delay=0.2), "scripted")


class Lines:
    """Progress as lines on stdout, for the test to read."""

    def arm(self, name: str, total: int, rows: list[ResultRow]) -> None:
        print(f"ARM {name} {len(rows)}/{total}", flush=True)

    def row(self, name: str, row: ResultRow) -> None:
        print(f"ROW {name} {row.task_id} {row.attempt}", flush=True)


def arms(archives: Path) -> list[Arm]:
    """The arms: one folder, the seed on its tool loop (made once under ``archives``)."""
    folder = archives / "loop-seed"
    if not folder.is_dir():
        loop_seed(folder)
    return [parse_arm(f"{name}={folder}") for name in ARM_NAMES]


def run(archives: Path, run_id: str) -> Comparison:
    return compare(
        arms(archives), suite="builtin", split="train", limit=len(TASKS), attempts=ATTEMPTS,
        config=AgentevoConfig(archives_dir=archives), run_id=run_id, parallel=1, progress=Lines(), backend=scripted,
    )  # fmt: skip


if __name__ == "__main__":
    result = run(Path(sys.argv[1]), sys.argv[2])
    print("DONE", result.model_dump_json(), flush=True)
