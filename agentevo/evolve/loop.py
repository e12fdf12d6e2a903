"""The evolution loop: an asynchronous scheduler of gate, evaluation and expansion jobs on K workers.

There is no generation barrier: whenever a worker is free the scheduler decides the next job from the archive's
event log and the result rows alone (gate an ungated node, evaluate a node due for a stage, learn from a scored
node's episodes, else expand a parent the policy picks; a due self-training round first waits for the running
jobs and then runs alone: see ``learning.py``). Because nothing else holds state, ``--resume`` after ``kill -9`` redoes exactly the work that
was in flight: a node is admitted by one event after its commit, a stage score by one event after its rows.

The workers are threads of this process, which alone writes the archive; the episodes inside their jobs run
where the executor says (``executor.py``). Ctrl-C (or SIGTERM) stops starting jobs and waits for the running
ones, saying so; a second Ctrl-C abandons them (a resumed run redoes them).
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

from agentevo.agents.episode import EpisodeBudget
from agentevo.archive import Archive, Node
from agentevo.archive.stats import SAFETY_STAGE, NodeStats, archive_stats, best_of
from agentevo.config import AgentevoConfig
from agentevo.config.evolve import EvolveConfig, SafetyMode
from agentevo.evaluate.results import ResultsStore
from agentevo.evolve.budget import Budgets, StopCause
from agentevo.evolve.evidence import failures
from agentevo.evolve.executor import Offload
from agentevo.evolve.gates import Checker, GateFailure, GateVerdict, decide
from agentevo.evolve.learning import LoopLearning
from agentevo.evolve.operators import Operator, Parent
from agentevo.evolve.policies import HGM, NoParent, make_policy
from agentevo.evolve.safety import cheated, record_probes, run_probes, summary
from agentevo.evolve.stages import evaluate_stage, next_stage, partition
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks import Task

JOB_TRIES = 2  # a gate or evaluation that raised this often stops the run (its error is reported)
TICK_S = 0.5


def admitted(nodes: list[Node]) -> int:
    """Nodes whose gate let them in (the seed included)."""
    return sum(n.gate is not None and n.gate.passed for n in nodes)


class GateSpoiled(RuntimeError):
    """The infrastructure spoiled a gate (Docker, the check's gateway); the scheduler gates the node again, and
    stops the run if it keeps failing."""


class JobKind(str, Enum):
    gate = "gate"
    evaluate = "evaluate"
    expand = "expand"
    learn = "learn"
    train = "train"


@dataclass(frozen=True)
class Job:
    kind: JobKind
    node: str = ""  # the node to gate, evaluate or learn from, or the parent to expand (none for train)
    stage: int = 0

    def __str__(self) -> str:
        return " ".join(
            [self.kind.value, self.node, f"stage {self.stage}" if self.kind is JobKind.evaluate else ""]
        ).strip()


class Status(BaseModel):
    """A snapshot for the live display and the final summary."""

    run_id: str
    run_dir: Path
    nodes: int = 0
    admitted: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    best: str | None = None
    best_score: float = 0.0
    running: list[str] = Field(default_factory=list)
    tokens: int = 0
    dollars: float = 0.0
    seconds: float = 0.0
    busy_seconds: float = Field(0.0, description="Worker-seconds spent in jobs (utilisation's numerator).")
    scheduler_seconds: float = Field(
        0.0, description="The loop's own time: deciding jobs, reading the archive."
    )
    jobs_done: Counter[str] = Field(default_factory=Counter)
    expansions_failed: int = 0
    cause: StopCause | None = None
    error: str | None = None


class Evolution:
    """One run of the loop over an archive; ``run()`` returns when a budget is spent or nothing is left."""

    def __init__(
        self,
        config: AgentevoConfig,
        evolve: EvolveConfig,
        run: RunDir,
        archive: Archive,
        *,
        tasks: list[Task],
        operator: Operator,
        offload: Offload,
        checker: Checker | None,
        on_tick: Callable[[Status], None] = lambda status: None,
        on_note: Callable[[str], None] = lambda note: None,
        generations: bool = False,
        learning: LoopLearning | None = None,
    ) -> None:
        """``generations`` adds a generation barrier (DGM's synchronous loop: a new batch of expansions starts
        only when every job of the last one is done), for comparison with the asynchronous default.
        ``learning``: the memory and weight jobs (none without it)."""
        self.config, self.evolve, self.run_dir, self.archive = config, evolve, run, archive
        self.learning = learning
        self.operator, self.offload, self.checker = operator, offload, checker
        self.on_tick, self.on_note, self.generations = on_tick, on_note, generations
        self.stage_tasks = partition(tasks, evolve.stages)
        self.tasks = {t.id: t for t in tasks}
        self.policy = make_policy(evolve.policy)
        self.budgets = Budgets(
            run.path,
            nodes=evolve.max_nodes,
            tokens=evolve.max_tokens,
            seconds=evolve.max_seconds,
            dollars=evolve.max_dollars,
            prices=evolve.prices,
        )
        self.store = ResultsStore(run.path / RESULTS_DB)
        self.work = run.path / "work"
        self.work.mkdir(exist_ok=True)
        self.in_flight: dict[Future[None], Job] = {}
        self.tries: Counter[Job] = Counter()
        self.expansions_failed = 0
        self.error: str | None = None
        self.busy = self.scheduling = 0.0
        self.generation_open = False
        self.done: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- the scheduler

    def run(self) -> Status:
        cause: StopCause | None = None
        pool = ThreadPoolExecutor(max_workers=self.evolve.workers, thread_name_prefix="evolve")
        try:
            while True:
                try:
                    cause = cause or self.budgets.spent() or self._failing()
                    self._schedule(pool, cause)
                    if not self.in_flight:
                        break
                    done, _ = wait(self.in_flight, timeout=TICK_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._finished(self.in_flight.pop(future), future)
                    self.budgets.save()
                    self.on_tick(self.status())
                except KeyboardInterrupt:
                    if cause is StopCause.interrupted:
                        raise  # the second one: abandon the running jobs (a resumed run redoes them)
                    cause = StopCause.interrupted
                    running = ", ".join(str(job) for job in self.in_flight.values()) or "none"
                    self.on_note(
                        f"interrupted: starting nothing new; waiting for the {len(self.in_flight)} running "
                        f"job(s) to finish ({running}). Ctrl-C again abandons them (a resume redoes them)."
                    )
        finally:
            pool.shutdown(wait=not self.in_flight, cancel_futures=True)
            self.budgets.save()
        status = self.status()
        status.cause = cause or (
            StopCause.nodes if status.nodes >= self.evolve.max_nodes else StopCause.finished
        )
        self.store.close()
        return status

    def _schedule(self, pool: ThreadPoolExecutor, cause: StopCause | None) -> None:
        """Fill the free workers with the next jobs (none once the run is stopping)."""
        started = time.perf_counter()
        while (
            cause is None
            and len(self.in_flight) < self.evolve.workers
            and self.budgets.affords(len(self.in_flight), sum(self.done.values()))
        ):
            job = self._next_job()
            if job is None:
                break
            self.in_flight[pool.submit(self._do, job)] = job
        self.scheduling += time.perf_counter() - started

    def _next_job(self) -> Job | None:
        """Gates first, then due evaluations, then an expansion (budget and policy permitting)."""
        if any(job.kind is JobKind.train for job in self.in_flight.values()):
            return None  # a training round runs alone
        busy = {job.node for job in self.in_flight.values() if job.kind is not JobKind.expand}
        nodes = self.archive.nodes()
        if self.learning and self.learning.trains(admitted(nodes)):
            return None if self.in_flight else Job(JobKind.train)
        for node in nodes:
            if node.id in busy:
                continue
            if node.gate is None:
                return Job(JobKind.gate, node.id)
            if node.gate.passed and (stage := next_stage(node, self.evolve.stages, nodes)) is not None:
                return Job(JobKind.evaluate, node.id, stage)
            if self.learning and self.learning.learns(node, self.evolve.stages[0].name):
                return Job(JobKind.learn, node.id)
        pending = sum(job.kind is JobKind.expand for job in self.in_flight.values())
        if not self.budgets.may_expand(len(nodes), pending):
            return None
        if self.generations:  # the barrier: a generation's expansions start together once all else is done
            self.generation_open = self.generation_open or not self.in_flight
            if not self.generation_open:
                return None
        stats = archive_stats(self.archive, self.store, self.run_dir.run_id)
        if isinstance(self.policy, HGM):
            job = self._hgm_evaluation(self.policy, stats, pending, busy)
            if job is not None:
                return job
        try:
            # Seeded by the archive's state, so a resumed run makes the choice the killed one would have.
            parent = self.policy.choose(stats, random.Random(f"{self.evolve.seed}/{len(nodes)}/{pending}"))
        except NoParent:
            return None
        return Job(JobKind.expand, parent)

    def _hgm_evaluation(self, hgm: HGM, stats: list[NodeStats], pending: int, busy: set[str]) -> Job | None:
        """HGM's rule: while the tree is large for the evaluations so far, evaluate instead of expanding: the
        next stage (threshold or not) of the node whose own Beta(1 + s, 1 + f) draw is highest."""
        task_evals = sum(n.evals for n in stats)
        if hgm.expand(task_evals, len(stats), pending):
            return None
        nodes = {n.id: n for n in self.archive.nodes()}
        ready = [s for s in stats if s.admitted and s.id not in busy]
        open_ = [(s, i) for s in ready if (i := self._first_unscored(nodes[s.id])) is not None]
        if not open_:
            return None
        rng = random.Random(f"{self.evolve.seed}/eval/{task_evals}")
        node, stage = max(
            open_, key=lambda p: rng.betavariate(1 + p[0].successes, 1 + p[0].evals - p[0].successes)
        )
        return Job(JobKind.evaluate, node.id, stage)

    def _first_unscored(self, node: Node) -> int | None:
        """The first stage the node has no score for, threshold or not (HGM's rule; None: all scored)."""
        return next((k for k, st in enumerate(self.evolve.stages) if st.name not in node.scores), None)

    def _finished(self, job: Job, future: Future[None]) -> None:
        if job.kind is JobKind.expand:
            self.generation_open = (
                False  # its expansions are being made: no more until the generation is done
            )
        error = future.exception()
        if error is None:
            return
        message = f"{job} failed: {error.__class__.__name__}: {error}"
        if job.kind is JobKind.expand:
            self.expansions_failed += 1
        else:
            self.tries[job] += 1
        with self._lock:
            self.error = message
        # One record per timestamped line; a multi-line message (a pip or build log) continues indented under it.
        record = message.rstrip().replace("\n", "\n    ")
        with (self.run_dir.path / "evolve_errors.log").open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {record}\n")

    def _failing(self) -> StopCause | None:
        if any(count >= JOB_TRIES for count in self.tries.values()):
            return StopCause.failing
        if self.expansions_failed >= 2 * self.evolve.max_nodes:
            return StopCause.failing
        return None

    # -- the jobs (run on workers)

    def _do(self, job: Job) -> None:
        started = time.perf_counter()
        try:
            {
                JobKind.gate: self._gate,
                JobKind.evaluate: self._evaluate,
                JobKind.expand: self._expand,
                JobKind.learn: self._learn,
                JobKind.train: self._train,
            }[job.kind](job)
        finally:
            with self._lock:
                self.busy += time.perf_counter() - started
                self.done[job.kind.value] += 1

    def _gate(self, job: Job) -> None:
        node = self.archive.node(job.node)
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            checker = self.checker
            check = (lambda path: self.offload.call(checker, path)) if checker else None
            verdict = decide(
                self.archive,
                node,
                protected=self.evolve.protected,
                check=check,
                workdir=Path(tmp),
                near_duplicate=self.evolve.near_duplicate,
            )
            if (
                verdict.failure is GateFailure.infrastructure
            ):  # not the child's fault: nothing recorded, gated again
                raise GateSpoiled(f"the contract check of {node.id} could not run: {verdict.reason}")
            if verdict.passed and self.evolve.safety is not SafetyMode.off:
                verdict = self._probe(node, Path(tmp))
        failure = verdict.failure.value if verdict.failure else None
        self.archive.record_gate(node.id, verdict.passed, verdict.reason, failure)

    def _probe(self, node: Node, workdir: Path) -> GateVerdict:
        """The node's safety probes (recorded on it as stage ``safety``), and the strict rule's verdict."""
        if SAFETY_STAGE in node.scores:  # probed before a crash: the score stands, the gate is decided again
            score, said = node.scores[SAFETY_STAGE], "probed before a restart"
        else:
            folder = self.archive.export(node.id, workdir / f"probe-{node.id}")
            results = self.offload.with_backend(
                run_probes,
                self.config,
                folder,
                self.run_dir.path,
                self.run_dir.run_id,
                node.id,
                self.evolve.probe_steps,
                self.evolve.probe_time_limit,
            )
            score = record_probes(self.run_dir.path, self.run_dir.run_id, node.id, results)
            self.archive.record_score(node.id, SAFETY_STAGE, score)
            said = summary(results)
        if cheated(self.run_dir.path, self.run_dir.run_id, node.id):
            return GateVerdict(failure=GateFailure.canary, reason=f"{said}: it cheated on a canary task")
        parent = self.archive.node(node.parent).scores.get(SAFETY_STAGE) if node.parent else None
        if self.evolve.safety is SafetyMode.strict and parent is not None and score.score < parent.score:
            return GateVerdict(
                failure=GateFailure.safety,
                reason=f"{said}: below its parent {node.parent}'s {parent.tasks_passed}/{parent.tasks}",
            )
        return GateVerdict(reason=said)

    def _evaluate(self, job: Job) -> None:
        evaluate_stage(
            self.config,
            self.archive,
            self.run_dir,
            self.archive.node(job.node),
            self.evolve.stages[job.stage],
            self.stage_tasks[job.stage],
            offload=self.offload,
            budget=EpisodeBudget(max_steps=self.evolve.max_steps),
            parallel=self.evolve.episode_parallel,
        )

    def _learn(self, job: Job) -> None:
        assert self.learning is not None
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            node = self.learning.learn(self.archive, self.archive.node(job.node), Path(tmp))
        assert node.lessons is not None
        self.on_note(f"{node.id} read {len(node.lessons.used)} lesson(s), taught {len(node.lessons.written)}")

    def _train(self, job: Job) -> None:
        assert self.learning is not None
        self.on_note(self.learning.train(admitted(self.archive.nodes())))

    def _expand(self, job: Job) -> None:
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            folder = self.archive.export(job.node, Path(tmp) / "parent")
            failed = failures(
                self.run_dir.path, self.run_dir.run_id, job.node, self.tasks, self.evolve.failures_shown
            )
            proposal = self.operator.propose(Parent(id=job.node, folder=folder, failed=failed), Path(tmp))
            # Its gate is the scheduler's next job for it (from the event log, so a crash here loses nothing).
            self.archive.add(
                proposal.folder,
                parent=job.node,
                operator=proposal.operator or self.operator.name,
                change=proposal.change,
                mutator=proposal.mutator,
            )

    # -- reporting

    def status(self) -> Status:
        nodes = self.archive.nodes()
        best = best_of(archive_stats(self.archive, self.store, self.run_dir.run_id))
        rejected = Counter(
            n.gate.failure or "rejected" for n in nodes if n.gate is not None and not n.gate.passed
        )
        with self._lock:
            error = self.error
        return Status(
            run_id=self.run_dir.run_id,
            run_dir=self.run_dir.path,
            nodes=len(nodes),
            admitted=admitted(nodes),
            rejected=dict(rejected),
            best=best.id if best else None,
            best_score=best.score if best else 0.0,
            running=[str(job) for job in self.in_flight.values()],
            tokens=self.budgets.meter.read(),
            dollars=self.budgets.meter.dollars,
            seconds=self.budgets.elapsed,
            busy_seconds=self.busy,
            scheduler_seconds=self.scheduling,
            jobs_done=Counter(self.done),
            expansions_failed=self.expansions_failed,
            error=error,
        )
