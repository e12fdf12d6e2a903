"""A run's folder under the archives directory: its id, the names of its files and its description.

It imports nothing of agentevo but :mod:`agentevo.files`, so every layer can name a run and its files: a file of a
run folder is spelt only here.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from agentevo.files import write_json_atomic

# The files and folders of a run folder, named here only (the module that writes each is on its right).
RUN_FILE = "run.json"  # RunDir.describe: the command, resolved configuration and manifest, how it ended
RESULTS_DB = "results.sqlite"  # evaluate.results: the rows, written here only; the archive's event log
RESULTS_FILE = "results.jsonl"  # evaluate.results.export_jsonl: a view of the rows, as a suite run ends
LEDGER_FILE = "ledger.json"  # gateway.server: tokens and calls per episode
CALLS_FILE = "llm_calls.jsonl"  # gateway.recorder: every model call, with its episode and served model
CHECKPOINTS_DIR = "checkpoints"  # orchestrate: the episodes' LangGraph checkpoints
ARCHIVE_REPO = "agents.git"  # archive: the agent variants as git commits
ARCHIVE_VIEW = "nodes.json"  # archive: the nodes, derived from the event log
EVOLVE_FILE = "evolve.json"  # evolve.start: the settings it was started with (``--resume`` keeps them)
EVOLVE_TASKS = "evolve_tasks.json"  # evolve.start: the tasks a run was given; --resume keeps them
BUDGET_FILE = "budget.json"  # evolve.budget: what was spent, across resumes
TRAINING_STATE = "self_training.json"  # evolve.learning: when the next interleaved training round is due
LESSONS_USED = "lessons_used.json"  # evolve.start (memory on): the lessons each node read
PLAN_FILE = "compare.json"  # compare.plan: the comparison's arms, tasks and attempts
COMPARISON_FILE = "comparison.json"  # compare.report: the comparison's statistics
REPORT_FILE = "report.html"  # compare.report, cli report: the run's page
ARM_AGENTS_DIR = "agents"  # compare: each arm's agent folder, exported from an archive once
# Beside the run folders in the archives directory: the experience memory's home unless ``memory.path`` names one.
MEMORY_DIR = "memory"


def new_run_id() -> str:
    """A run's id: when it started, then a random suffix (sorts by time, unique between processes)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class RunDir:
    """``<archives>/<run id>/`` with its ``run.json``; its rows are in ``results.sqlite`` (``evaluate.results``)."""

    def __init__(self, archives_dir: Path, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.path = Path(archives_dir) / self.run_id
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def results_path(self) -> Path:
        """The JSONL view of the run's rows (``evaluate.results.export_jsonl`` writes it)."""
        return self.path / RESULTS_FILE

    def describe(self, **fields: Any) -> None:
        """Write (or update) ``run.json``."""
        target = self.path / RUN_FILE
        current = json.loads(target.read_text()) if target.exists() else {"run_id": self.run_id}
        current.update(fields)
        write_json_atomic(target, current)
