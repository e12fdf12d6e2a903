"""Where the heavy parts of jobs run: episodes (evaluations, safety probes) and contract checks.

The scheduler's K workers are threads of this process, and every archive event is written here, so the archive
has one writer whatever the executor. What differs is where episodes run:

* ``local``: in the worker thread itself (an evaluation runs its episodes ``episode_parallel`` at a time);
* ``ray``: each episode is a Ray task (a local Ray started with ``num_cpus=workers``, or the cluster at
  ``ray_address``); result rows are written by the Ray workers into the run's SQLite (WAL, one row per
  transaction) and its call log (one locked append per call), both safe across processes. With memory on, a
  worker joins the run's memory service by its url (one writer: the service) and returns the lessons its episode
  read, which this process adds to the node's record.

Ray workers need the run folder on a filesystem they share with this process (true for a local Ray), Docker,
and a backend they can unpickle and reach (the scripted model, or an ``openai`` HTTP backbone; a llama.cpp or
vLLM server supervised by this process is not shipped to other processes: use ``local`` with those).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import EvolveConfig, ExecutorName
from agentevo.gateway import Backend
from agentevo.orchestrate import run_suite
from agentevo.runs import RunDir
from agentevo.tasks import Task

if TYPE_CHECKING:
    from agentevo.memory.episodes import RunMemory

T = TypeVar("T")
BackendSource = Callable[[], AbstractContextManager[Backend]]
"""Opens the task backbone in a Ray worker (a backend holds live connections, so it is never pickled)."""


class Offload(Protocol):
    name: str

    @property
    def model(self) -> str:
        """The model name episodes are served by now (an adapter's name when one is active)."""
        ...

    def episodes(
        self,
        config: AgentevoConfig,
        tasks: list[Task],
        *,
        agent_dir: Path,
        run: RunDir,
        agent_id: str,
        budget: EpisodeBudget,
        parallel: int,
    ) -> None:
        """Run and score one attempt of ``agent_dir`` at each task, recording the rows in the run."""
        ...

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` where episodes run (a contract check)."""
        ...

    def with_backend(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(backend, *args)`` where episodes run, with the task backbone there (safety probes)."""
        ...

    def close(self) -> None: ...


class LocalOffload:
    """Everything in the calling thread, on the backend this process opened."""

    name = ExecutorName.local.value

    def __init__(self, backend: Backend, memory: RunMemory | None = None) -> None:
        self.backend = backend
        self.memory = memory  # experience memory (memory.enabled): every node's episodes read and feed it

    @property
    def model(self) -> str:
        return self.backend.model  # follows a promotion: the gateway's backend serves the new name

    def episodes(
        self,
        config: AgentevoConfig,
        tasks: list[Task],
        *,
        agent_dir: Path,
        run: RunDir,
        agent_id: str,
        budget: EpisodeBudget,
        parallel: int,
    ) -> None:
        run_suite(
            config,
            tasks,
            agent_dir=agent_dir,
            run=run,
            agent_id=agent_id,
            budget=budget,
            parallel=parallel,
            backend=self.backend,
            memory=self.memory,
        )

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def with_backend(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self.backend, *args)

    def close(self) -> None:
        pass


def _episode_task(
    source: BackendSource,
    config: AgentevoConfig,
    task: Task,
    agent_dir: str,
    archives: str,
    run_id: str,
    agent_id: str,
    budget: EpisodeBudget,
    memory_url: str | None,
) -> list[str]:
    """One episode as a Ray task (a RunDir holds a lock, so it is rebuilt from its folder here); the ids of the
    lessons it read."""
    with source() as backend, _worker_memory(config, memory_url, run_id, agent_id) as memory:
        run_suite(
            config,
            [task],
            agent_dir=Path(agent_dir),
            run=RunDir(Path(archives), run_id),
            agent_id=agent_id,
            budget=budget,
            parallel=1,
            backend=backend,
            memory=memory,
        )
        return sorted(memory.used) if memory else []


def _worker_memory(
    config: AgentevoConfig, url: str | None, run_id: str, agent_id: str
) -> AbstractContextManager[RunMemory | None]:
    """The run's memory in a Ray worker: a client of the service the driver started (None when memory is off)."""
    if url is None:
        return nullcontext()
    from agentevo.memory.episodes import run_memory

    return run_memory(config.memory.model_copy(update={"url": url}), Path(), run_id=run_id, node_id=agent_id)


def _call_task(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _backend_task(source: BackendSource, fn: Callable[..., Any], *args: Any) -> Any:
    with source() as backend:
        return fn(backend, *args)


class RayOffload:
    """Episodes, checks and probes as Ray tasks, one CPU each; each opens the backbone from ``source``."""

    name = ExecutorName.ray.value

    def __init__(
        self,
        workers: int,
        address: str | None,
        source: BackendSource,
        model: str,
        memory: RunMemory | None = None,
    ) -> None:
        import ray

        self.ray, self.source, self.model, self.memory = ray, source, model, memory
        self.owned = not ray.is_initialized()
        if self.owned:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        task = ray.remote(num_cpus=1, max_retries=0)
        self._episode, self._call, self._backend = task(_episode_task), task(_call_task), task(_backend_task)

    def episodes(
        self,
        config: AgentevoConfig,
        tasks: list[Task],
        *,
        agent_dir: Path,
        run: RunDir,
        agent_id: str,
        budget: EpisodeBudget,
        parallel: int,
    ) -> None:
        archives, url = str(run.path.parent), self.memory.url if self.memory else None
        read = self.ray.get(
            [
                self._episode.remote(
                    self.source, config, task, str(agent_dir), archives, run.run_id, agent_id, budget, url
                )
                for task in tasks
            ]
        )
        if self.memory is not None:
            self.memory.note_used(agent_id, sorted({lesson for ids in read for lesson in ids}))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.ray.get(self._call.remote(fn, *args))

    def with_backend(self, fn: Callable[..., T], *args: Any) -> T:
        return self.ray.get(self._backend.remote(self.source, fn, *args))

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def make_offload(
    evolve: EvolveConfig, backend: Backend, source: BackendSource | None, memory: RunMemory | None = None
) -> Offload:
    """The configured executor: ``ray`` needs ``source``, a way to open the backbone in its workers. ``memory``:
    the run's experience memory (Ray workers join its service)."""
    if evolve.executor is ExecutorName.local:
        return LocalOffload(backend, memory)
    if source is None:
        raise ValueError("the ray executor needs a backend source (how its workers open the backbone)")
    return RayOffload(evolve.workers, evolve.ray_address, source, backend.model, memory)
