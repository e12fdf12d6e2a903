"""Starting or resuming a run: its folder, its seed node, the mutating gateway and the operator.

``evolve.json`` in the run folder keeps the run's ``evolve`` settings, so ``--resume`` continues the same search
(only budgets may be raised when resuming).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentevo.agents.check import check_agent
from agentevo.agents.episode import EpisodeBudget, seed_agent_dir
from agentevo.archive import Archive, ArchiveError
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import GENOME_OPERATORS, EvolveConfig, ExecutorName, OperatorName
from agentevo.evolve.bandit import MutatorBandit
from agentevo.evolve.bootstrap import Bootstrap
from agentevo.evolve.executor import BackendSource, make_offload
from agentevo.evolve.gates import Checker
from agentevo.evolve.genome_operators import Crossover, Mutate
from agentevo.evolve.learning import LoopLearning
from agentevo.evolve.loop import Evolution, Status
from agentevo.evolve.operator_bandit import OperatorBandit
from agentevo.evolve.operators import Meta, Operator, Reflect
from agentevo.files import read_json, write_json_atomic
from agentevo.gateway import Backend, Gateway
from agentevo.gateway.backends import ChatModelBackend, supervised_server
from agentevo.gateway.client import HostLLM
from agentevo.kinds import seed_for
from agentevo.llm.backbone import BackboneSetupError
from agentevo.runs import EVOLVE_FILE, EVOLVE_TASKS, LESSONS_USED, MEMORY_DIR, TRAINING_STATE, RunDir
from agentevo.serving.backbone import request_retry
from agentevo.tasks import Task, load_suite

if TYPE_CHECKING:
    from agentevo.train.interleave import SelfTraining

BUDGETS = ("max_nodes", "max_tokens", "max_seconds")


def open_run(
    config: AgentevoConfig,
    evolve: EvolveConfig,
    resume: str | None = None,
    *,
    seed: Path | None = None,
    budgets: Mapping[str, float | int | None] | None = None,
) -> tuple[RunDir, EvolveConfig]:
    """A new run with ``evolve`` (its seed, by default the built-in seed agent, added), or the run ``resume`` with
    its saved settings. ``budgets`` (``max_nodes``, ``max_tokens``, ``max_seconds``) override either."""
    unknown = set(budgets or {}) - set(BUDGETS)
    if unknown:
        raise ValueError(f"not a budget: {', '.join(sorted(unknown))} (budgets: {', '.join(BUDGETS)})")
    if resume is None:
        evolve = evolve.model_copy(update=budgets or {})
        run = RunDir(config.archives_dir)
        write_json_atomic(run.path / EVOLVE_FILE, {"evolve": evolve.model_dump(mode="json")})
    else:
        saved = Path(config.archives_dir) / resume / EVOLVE_FILE
        if not saved.is_file():
            raise ArchiveError(
                f"{saved.parent} is not an evolve run ({EVOLVE_FILE} is missing); check the run id"
            )
        run = RunDir(config.archives_dir, resume)
        stored = EvolveConfig.model_validate(json.loads(saved.read_text())["evolve"])
        evolve = stored.model_copy(update=budgets or {})
    with Archive(run.path) as archive:
        if not archive.nodes():  # a new run, or one killed before its seed was committed
            archive.add(seed or seed_for(evolve.suite), operator="seed", change="the seed agent")
    return run, evolve


def coder_folder(evolve: EvolveConfig, archive: Archive, run: RunDir) -> Path:
    """The meta operator's coding agent: the seed, a node of this run (exported once), or an agent folder."""
    if evolve.coder is None:
        return seed_agent_dir()
    if evolve.coder in {n.id for n in archive.nodes()}:
        dest = run.path / f"coder-{evolve.coder}"
        return dest if dest.is_dir() else archive.export(evolve.coder, dest)
    folder = Path(evolve.coder).expanduser().resolve()
    if not (folder / "run.py").is_file():
        raise ArchiveError(f"evolve.coder {evolve.coder!r} is neither a node of this run nor an agent folder")
    return folder


def make_operator(
    config: AgentevoConfig, evolve: EvolveConfig, archive: Archive, run: RunDir, gateway: Gateway
) -> Operator:
    mutator = HostLLM(gateway, scope="evolve", timeout=evolve.mutator_timeout)
    if evolve.operator is OperatorName.reflect:
        return Reflect(mutator, evolve.surfaces)
    coder = coder_folder(evolve, archive, run) if evolve.operator is OperatorName.meta else None
    return Meta(
        mutator,
        gateway,
        coder=coder,
        sandbox=config.sandbox,
        steps=evolve.coder_steps,
        time_limit=evolve.coder_time_limit,
    )


def evolve_run(
    config: AgentevoConfig,
    evolve: EvolveConfig,
    run: RunDir,
    *,
    backend: Backend,
    mutator_backend: Backend | list[Backend],
    operator: Operator | None = None,
    checker: Checker | None = None,
    tasks: list[Task] | None = None,
    backend_source: BackendSource | None = None,
    on_tick: Callable[[Status], None] = lambda status: None,
    on_note: Callable[[str], None] = lambda note: None,
    generations: bool = False,
) -> Status:
    """Run the loop until a budget is spent or nothing is left. Several ``mutator_backend``s take turns under the
    bandit (``bandit.py``). ``operator``, ``checker`` and ``tasks`` replace the configured ones (tests); the
    contract check is ``check_agent`` unless ``evolve.contract_check`` is off. ``backend_source`` opens the task
    backbone in Ray workers (``executor: ray``)."""
    tasks = run_tasks(run, evolve, tasks)
    if checker is None and evolve.contract_check:
        checker = partial(
            check_agent,
            sandbox_config=config.sandbox,
            time_limit=evolve.check_time_limit,
            import_timeout=evolve.check_time_limit,
        )
    retry = request_retry(config.resilience)
    memory = contextlib.ExitStack()  # memory.enabled: one library every node's episodes read and feed
    library = memory.enter_context(_memory(config, run))
    offload = make_offload(evolve, backend, backend_source, library)
    learning = LoopLearning(
        config,
        run,
        tasks,
        backend=backend,
        budget=EpisodeBudget(max_steps=evolve.max_steps),
        memory=library,
        training=_training(config, evolve, run, backend),
    )
    try:
        with Archive(run.path) as archive, contextlib.ExitStack() as gateways:
            opened = [
                gateways.enter_context(Gateway(b, run_dir=run.path, run_id=run.run_id, retry=retry))
                for b in (mutator_backend if isinstance(mutator_backend, list) else [mutator_backend])
            ]
            chosen = operator or _operator(config, evolve, archive, run, opened, tasks)
            loop = Evolution(
                config,
                evolve,
                run,
                archive,
                tasks=tasks,
                operator=chosen,
                offload=offload,
                checker=checker,
                on_tick=on_tick,
                on_note=on_note,
                generations=generations,
                learning=learning,
            )
            return loop.run()
    finally:
        offload.close()
        memory.close()


def _operator(
    config: AgentevoConfig,
    evolve: EvolveConfig,
    archive: Archive,
    run: RunDir,
    gateways: list[Gateway],
    tasks: list[Task] | None = None,
) -> Operator:
    """The configured operator; with several (``evolve.operators``), each behind the bandit over operators."""
    names = evolve.operators or [evolve.operator]
    made = {
        name.value: _one_operator(
            config, evolve.model_copy(update={"operator": name}), archive, run, gateways, tasks
        )
        for name in names
    }
    if len(made) == 1:
        return next(iter(made.values()))
    return OperatorBandit(made, archive.nodes, evolve.stages[0].name, evolve.seed)


def _one_operator(
    config: AgentevoConfig,
    evolve: EvolveConfig,
    archive: Archive,
    run: RunDir,
    gateways: list[Gateway],
    tasks: list[Task] | None,
) -> Operator:
    """``evolve.operator``; a model-driven one with several mutating backbones is one per backbone behind the
    bandit over backbones."""
    if evolve.operator.value in GENOME_OPERATORS:
        return genome_operator(config, evolve, archive, run, tasks)
    if len(gateways) == 1:
        return make_operator(config, evolve, archive, run, gateways[0])
    names = [gateway.backend.model for gateway in gateways]
    if len(set(names)) < len(names):
        raise BackboneSetupError(
            f"evolve.mutators serve the model names {names}: give each a distinct `model` (the bandit and the "
            "node records tell them apart by name)"
        )
    operators = {
        name: make_operator(config, evolve, archive, run, g) for name, g in zip(names, gateways, strict=True)
    }
    return MutatorBandit(operators, archive.nodes, evolve.stages[0].name, evolve.seed)


def run_tasks(run: RunDir, evolve: EvolveConfig, tasks: list[Task] | None) -> list[Task]:
    """The tasks the run evolves on: those given, recorded so that ``--resume`` scores its nodes on the same ones;
    else those recorded when the run started; else the configured split in the suite's order."""
    path = run.path / EVOLVE_TASKS
    if tasks is not None:
        write_json_atomic(path, {"tasks": [t.id for t in tasks]})
        return tasks
    split = load_suite(evolve.suite, split=evolve.split)
    recorded = read_json(path).get("tasks")
    if not recorded:
        return split
    by_id = {t.id: t for t in split}
    if missing := [i for i in recorded if i not in by_id]:
        raise ValueError(
            f"{path} names tasks the {evolve.suite} {evolve.split} split no longer has ({', '.join(missing[:3])}); "
            "resume with the suite the run started with, or start a new run"
        )
    return [by_id[i] for i in recorded]


def genome_operator(
    config: AgentevoConfig, evolve: EvolveConfig, archive: Archive, run: RunDir, tasks: list[Task] | None
) -> Operator:
    """``mutate``, ``crossover`` or ``bootstrap``: no model call (bootstrap asks the evaluator)."""
    if evolve.operator is OperatorName.mutate:
        return Mutate(archive, evolve.seed)
    if evolve.operator is OperatorName.crossover:
        return Crossover(archive, evolve.seed, evolve.stages[0].name, archive.export)
    from agentevo.evaluate.evaluator import Evaluator

    split = tasks if tasks is not None else load_suite(evolve.suite, split=evolve.split)
    return Bootstrap(archive, evolve.seed, run, {t.id: t for t in split}, Evaluator(config.sandbox))


def _memory(config: AgentevoConfig, run: RunDir) -> contextlib.AbstractContextManager:
    """The run's experience memory (None when off); which lessons each node read: ``<run>/lessons_used.json``."""
    if not config.memory.enabled:
        return contextlib.nullcontext()
    from agentevo.memory.episodes import run_memory  # Chroma and the embedding model: only when memory is on

    path = config.memory.path or config.archives_dir / MEMORY_DIR
    return run_memory(config.memory, path, run_id=run.run_id, record=run.path / LESSONS_USED)


def _training(
    config: AgentevoConfig, evolve: EvolveConfig, run: RunDir, backend: Backend
) -> SelfTraining | None:
    """The interleaved LoRA rounds (``train.interleave_every``), promoted on agent episodes of a fresh sample of the
    split the loop does not select on (``agentevo.compare.promotion.EpisodeJudge``), served by the run's own server."""
    if not config.train.interleave_every:
        return None
    server = supervised_server(backend)
    local = evolve.executor is ExecutorName.local
    if server is None or not isinstance(backend, ChatModelBackend) or not local:
        raise BackboneSetupError(
            "train.interleave_every needs the local executor and a backbone agentevo serves adapters on "
            f"(llm.backbone llamacpp or vllm; this run: {config.llm.backbone}, executor {evolve.executor.value})"
        )
    from agentevo.compare.promotion import EpisodeJudge, live_backend
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.serving.adapters import registry_of, served_model_dir
    from agentevo.train.interleave import SelfTraining

    split = "test" if evolve.split == "validation" else "validation"
    serve = live_backend(server, backend, registry_of(config))
    judge = EpisodeJudge(config, evolve.suite, split=split, backend=serve)
    return SelfTraining(
        config.train,
        served_model_dir(config) or ensure_embedded_model(config.cache_dir),
        server,
        judge,
        backend=backend,
        state=run.path / TRAINING_STATE,
    )
