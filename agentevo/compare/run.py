"""``compare``: every arm on the same tasks, k attempts each, rows in one run folder, then the statistics.

Each arm is a ``run_suite`` call (``agentevo run``'s machinery: isolated episodes, the evaluator, retries of what
the infrastructure spoils) with ``agent_id`` = the arm's name, so its rows are keyed by (arm, task, attempt) in the
run's ``results.sqlite``. Before an arm runs, the attempts it already has a scored row for are left out: after
``kill -9`` the same call (or ``agentevo compare --run RUN``) runs only what is missing, and an arm added later runs
alone, the others untouched (only the arms a call names run; a call naming none runs every arm). Arms run one after another, each on its own backbone, memory and adapter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agentevo.compare.agent import agent_folder
from agentevo.compare.analysis import Comparison, analyse
from agentevo.compare.arms import ACTIVE_ADAPTER, Arm
from agentevo.compare.plan import Design, Plan, open_plan
from agentevo.compare.report import write_results
from agentevo.config import AgentevoConfig, load_config
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.files import read_json
from agentevo.gateway import Backend, ChatModelBackend
from agentevo.manifest import run_manifest
from agentevo.orchestrate import run_suite
from agentevo.runs import ARM_AGENTS_DIR, MEMORY_DIR, PLAN_FILE, RESULTS_DB, RUN_FILE, RunDir, new_run_id
from agentevo.serving.adapters import serve_adapter
from agentevo.serving.backbone import open_backend
from agentevo.tasks import Task

if TYPE_CHECKING:
    from agentevo.memory.episodes import RunMemory

BackendFactory = Callable[[Arm, AgentevoConfig], AbstractContextManager[Backend]]
"""Opens the backbone an arm's episodes call (default: the arm's configured backbone, its adapter served)."""


class CompareProgress(Protocol):
    """What a comparison reports while it runs (``compare.report.RichProgress`` draws it)."""

    def arm(self, name: str, total: int, rows: list[ResultRow]) -> None: ...

    def row(self, name: str, row: ResultRow) -> None: ...


def compare(
    arms: Sequence[Arm] = (),
    *,
    suite: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    attempts: int | None = None,
    seed: int | None = None,
    spread: bool | None = None,
    config: AgentevoConfig | None = None,
    run_id: str | None = None,
    parallel: int = 2,
    progress: CompareProgress | None = None,
    backend: BackendFactory | None = None,
) -> Comparison:
    """Run ``arms`` (the first is the baseline) on the same tasks and compare them; see the module's doc.

    ``suite``/``split``/``limit``/``attempts``/``seed`` default to builtin, test, all, 1 and 0 on a new run
    (``spread``: the limit's tasks spread over levels and templates, not the first N); with
    ``run_id`` of an earlier comparison they default to its plan (and must agree with it), and ``arms`` may add
    arms to it. Only the arms named run (with none named, every arm of the plan), so an arm can be added while
    another process still runs the others. Writes ``compare.json`` (the plan), ``comparison.json`` and ``report.html`` into the run folder.
    Raises ``RunInterrupted`` on Ctrl-C (the finished episodes' rows are kept: call again with the run id).
    """
    settings = config or load_config()
    run_id = run_id or new_run_id()
    design = Design(suite=suite, split=split, limit=limit, attempts=attempts, seed=seed, spread=spread)
    for arm in arms:  # every arm's configuration checked before anything is written or run
        arm.settings(settings)
    plan = open_plan(settings.archives_dir / run_id, list(arms), design, settings.archives_dir)
    arm_settings = {arm.name: arm.settings(settings) for arm in plan.arms}
    tasks = plan.load_tasks()
    run = RunDir(
        settings.archives_dir, run_id
    )  # the folder exists once the plan holds (a bad one leaves none)
    run.describe(
        command="agentevo compare", arms={a.name: a.describe() for a in plan.arms}, **run_manifest(settings)
    )
    named = {arm.name for arm in arms}
    with ResultsStore(run.path / RESULTS_DB) as store:
        for arm in [a for a in plan.arms if not named or a.name in named]:
            _run_arm(arm, arm_settings[arm.name], plan, tasks, run, store, parallel, progress, backend)
        comparison = analyse(plan, store.rows(run.run_id), run_id=run.run_id, run_dir=run.path)
    write_results(comparison)
    return comparison


def _run_arm(
    arm: Arm,
    settings: AgentevoConfig,
    plan: Plan,
    tasks: list[Task],
    run: RunDir,
    store: ResultsStore,
    parallel: int,
    progress: CompareProgress | None,
    backend: BackendFactory | None,
) -> None:
    """The arm's missing attempts: those without a scored row (an attempt spoiled on every try is tried again)."""
    planned = set(plan.tasks)
    rows = [r for r in store.rows(run.run_id, arm.name) if r.task_id in planned and r.scored]
    done = {(r.task_id, r.attempt) for r in rows}
    todo = {(t.id, a) for t in tasks for a in range(plan.attempts)} - done
    if progress is not None:
        progress.arm(arm.name, len(tasks) * plan.attempts, rows)
    if not todo:
        return
    folder = agent_folder(
        plan.agents[arm.name],
        suite=plan.suite,
        archives_dir=settings.archives_dir,
        dest=run.path / ARM_AGENTS_DIR / arm.name,
    )
    report = (lambda row: progress.row(arm.name, row)) if progress is not None else (lambda row: None)
    with (
        (backend or open_arm_backend)(arm, settings) as served,
        _memory(settings, run, arm) as memory,
    ):
        run_suite(
            settings,
            tasks,
            agent_dir=folder,
            run=run,
            agent_id=arm.name,
            attempts=plan.attempts,
            parallel=parallel,
            budget=arm.budget(),
            on_result=report,
            backend=served,
            memory=memory,
            only=todo,
            seed=plan.seed,
        )


@contextlib.contextmanager
def _memory(settings: AgentevoConfig, run: RunDir, arm: Arm) -> Iterator[RunMemory | None]:
    """The arm's experience memory when it has it on (Chroma is loaded only then)."""
    if not settings.memory.enabled:
        yield None
        return
    from agentevo.memory.episodes import run_memory

    default = settings.archives_dir / MEMORY_DIR
    with run_memory(settings.memory, default, run_id=run.run_id, node_id=arm.name) as memory:
        yield memory


@contextlib.contextmanager
def open_arm_backend(arm: Arm, settings: AgentevoConfig) -> Iterator[Backend]:
    """The arm's backbone, serving its adapter: none (the base weights, even when the registry has an active
    adapter), the active one (as ``agentevo run``), or the one it names."""
    with open_backend(settings, concurrent=True) as served:
        if arm.adapter is None and served.model != settings.llm.model:
            _serve_base(served, settings.llm.model)
        elif arm.adapter not in (None, ACTIVE_ADAPTER):
            serve_adapter(settings, served, arm.adapter)
        yield served


def _serve_base(served: Backend, model: str) -> None:
    """Serve the base weights on a backend an active adapter was made the default of (only a chat model's is)."""
    if not isinstance(served, ChatModelBackend):
        raise TypeError(f"{type(served).__name__} serves {served.model!r}, not the base model {model!r}")
    served.serve(model)


def results_of(run_dir: Path) -> Comparison:
    """The comparison of an existing run folder, computed again from its plan and rows (nothing is run)."""
    plan = Plan.model_validate(read_json(run_dir / PLAN_FILE))
    run_id = read_json(run_dir / RUN_FILE).get("run_id", run_dir.name)
    with ResultsStore(run_dir / RESULTS_DB) as store:
        return analyse(plan, store.rows(run_id), run_id=run_id, run_dir=run_dir)
