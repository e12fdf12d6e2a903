"""Self-play data (R-Zero, Absolute Zero, Self-Challenging agents): the backbone proposes tasks, the evaluator
verifies them, the solver samples on the ones it finds neither trivial nor hopeless.

A proposal (:mod:`agentevo.train.propose`) enters the pool only when, in order:

1. it is not a held-out task or a task of a held-out template (``heldout``), nor a copy of a task shown or
   proposed before (``copy``);
2. the evaluator runs its tests against its own reference in a fresh sandbox and they all pass
   (``reference_fails`` otherwise);
3. every trivial answer fails them: ``return None``, ``return 0``, ``return ""``, the first argument
   (``trivial_passes`` otherwise: tests that accept anything teach nothing);
4. the solver, sampled ``train.k`` times on it by direct prompting, passes a share inside
   ``train.band_min..band_max`` (R-Zero's uncertainty reward as a filter: ``too_hard`` or ``too_easy`` otherwise).

The kept proposals' samples are recorded in the run like a sampling round's (passed ones become RFT rows, a passed
and a failed one of a task a DPO pair); every proposal, kept or refused and why, is a line of ``proposals.jsonl``,
and the pool's tasks are in ``pool.jsonl``, both in the run folder.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from random import Random
from typing import Any

from pydantic import BaseModel, Field

from agentevo.llm.structured import StructuredOutputError
from agentevo.progress import Log, progress
from agentevo.runs import RunDir
from agentevo.tasks.model import Split, Task
from agentevo.train.config import TrainConfig
from agentevo.train.propose import ProposedTask, as_task, examples_of, propose
from agentevo.train.sampling import Chat, record_attempts, sample_task

PROPOSALS_FILE, POOL_FILE = "proposals.jsonl", "pool.jsonl"
# Answers any task's tests should refuse: a test suite one of these passes accepts anything.
TRIVIAL = {
    "None": "return None",
    "0": "return 0",
    "empty string": 'return ""',
    "first argument": "return args[0] if args else None",
}


class SelfPlayError(ValueError):
    """Self-play cannot start; the message says what the suite lacks."""


class Refusal(StrEnum):
    """Why a proposal did not enter the pool."""

    unanswered = "unanswered"  # no answer that fits the schema (detail: the StructuredFailure)
    heldout = "heldout"  # a held-out task, or a function of a held-out template
    copy = "copy"  # the same reference or statement as a task shown or proposed before
    reference_fails = "reference_fails"  # its own reference fails its tests
    trivial_passes = "trivial_passes"  # a trivial answer passes its tests (detail: which)
    too_hard = "too_hard"  # the solver's pass share is below band_min
    too_easy = "too_easy"  # ... above band_max


class ProposalRecord(BaseModel):
    """One line of ``proposals.jsonl``."""

    index: int
    kept: bool
    refusal: Refusal | None = None
    detail: str = ""
    task_id: str | None = None
    solved: int | None = Field(None, description="Solver samples that passed (of samples).")
    samples: int | None = None
    proposal: ProposedTask | None = None
    seconds: float = 0.0


class SelfPlayRecord(BaseModel):
    """What a self-play round did."""

    proposals: int
    verified: int = Field(
        description="Proposals whose tests passed their reference and failed every trivial answer."
    )
    kept: int = Field(description="Of those, the ones inside the difficulty band: the pool.")
    refused: dict[str, int]
    pool: list[str] = Field(description="Task ids that entered the pool.")
    rows: dict[str, int] = Field(description="Samples recorded from the pool: passed / failed.")
    seconds: float

    @property
    def verified_per_minute(self) -> float:
        return 60 * self.verified / self.seconds if self.seconds else 0.0


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


class Novelty:
    """What a proposal must not be: a held-out task or template, or a copy of a known or earlier one."""

    def __init__(self, tasks: list[Task]) -> None:
        held = [t for t in tasks if t.split is not Split.train]
        train_functions = {t.entry_point for t in tasks if t.split is Split.train}
        self.heldout_functions = {t.entry_point for t in held} - train_functions
        self.heldout_texts = {
            _norm(x) for t in held for x in (t.instructions, t.canonical_solution or "") if x
        }
        self.seen = {
            _norm(x)
            for t in tasks
            if t.split is Split.train
            for x in (t.instructions, t.canonical_solution or "")
            if x
        }

    def refusal(self, proposal: ProposedTask) -> tuple[Refusal, str] | None:
        texts = {_norm(proposal.statement), _norm(proposal.reference)}
        if proposal.entry_point in self.heldout_functions:
            return Refusal.heldout, f"{proposal.entry_point} is the function of a held-out template"
        if texts & self.seen:  # before the held-out texts: a template's instances may share one reference
            return Refusal.copy, "the statement or reference of a train task or an earlier proposal"
        if texts & self.heldout_texts:
            return Refusal.heldout, "the statement or reference of a held-out task"
        self.seen |= texts
        return None


def trivial_solution(entry_point: str, body: str) -> str:
    return f"def {entry_point}(*args, **kwargs):\n    {body}\n"


def verify(task: Task, evaluator: Any) -> tuple[Refusal, str] | None:
    """None when the task's tests pass its reference and fail every trivial answer (each in a fresh sandbox)."""
    own = evaluator.evaluate_solution(task, task.canonical_solution or "")
    if not own.passed:
        return Refusal.reference_fails, own.feedback[:300]
    for name, body in TRIVIAL.items():
        if evaluator.evaluate_solution(task, trivial_solution(task.entry_point or "", body)).passed:
            return Refusal.trivial_passes, f"the trivial answer ({name}) passes every test"
    return None


class SelfPlay:
    """One self-play round over a suite: ``config.proposals`` proposals, each recorded with its fate."""

    def __init__(
        self,
        invoke: Callable,
        chat: Chat,
        tasks: list[Task],
        evaluator: Any,
        run: RunDir,
        *,
        model: str,
        config: TrainConfig,
        temperature: float,
        seed: int = 0,
        log: Log = progress,
    ) -> None:
        self.examples = examples_of(tasks)
        if not self.examples:
            raise SelfPlayError(
                "self-play needs train-split tasks with a reference and `assert call == value` tests to show as "
                "examples (the ladder, MBPP and the built-in suite have them); this suite has none"
            )
        self.invoke, self.chat, self.evaluator, self.run, self.model = invoke, chat, evaluator, run, model
        self.config, self.temperature, self.rng, self.log = config, temperature, Random(seed), log
        self.novelty = Novelty(tasks)

    def __call__(self) -> SelfPlayRecord:
        started, records = time.monotonic(), []
        for index in range(self.config.proposals):
            records.append(self.one(index))
            self.log(f"self-play proposal {index + 1}/{self.config.proposals}: {_fate(records[-1])}")
        kept = [r for r in records if r.kept]
        rows: Counter[str] = Counter()
        for r in kept:
            rows["passed"] += r.solved or 0
            rows["failed"] += (r.samples or 0) - (r.solved or 0)
        verified = sum(r.kept or r.refusal in (Refusal.too_easy, Refusal.too_hard) for r in records)
        return SelfPlayRecord(
            proposals=len(records),
            verified=verified,
            kept=len(kept),
            refused=dict(Counter(r.refusal.value for r in records if r.refusal)),
            pool=[r.task_id for r in kept if r.task_id],
            rows=dict(rows),
            seconds=round(time.monotonic() - started, 1),
        )

    def one(self, index: int) -> ProposalRecord:
        t0 = time.monotonic()
        result = self._judge(index)
        result.seconds = round(time.monotonic() - t0, 2)
        self._write(PROPOSALS_FILE, result.model_dump(mode="json"))
        return result

    def _judge(self, index: int) -> ProposalRecord:
        try:
            proposal = propose(self.invoke, self.examples, self.rng, self.config.propose_examples)
        except StructuredOutputError as exc:
            return ProposalRecord(
                index=index, kept=False, refusal=Refusal.unanswered, detail=exc.reason.value
            )
        refused = self.novelty.refusal(proposal)
        task = as_task(proposal)
        refused = refused or verify(task, self.evaluator)
        if refused:
            return ProposalRecord(
                index=index,
                kept=False,
                refusal=refused[0],
                detail=refused[1],
                task_id=task.id,
                proposal=proposal,
            )
        return self._band(index, proposal, task)

    def _band(self, index: int, proposal: ProposedTask, task: Task) -> ProposalRecord:
        """The solver's k samples; kept (and recorded) when its pass share lies inside the band."""
        attempts = sample_task(self.chat, task, self.config.k, self.temperature, self.evaluator)
        solved = sum(a.passed for a in attempts)
        share = solved / len(attempts)
        refusal = (
            Refusal.too_hard
            if share < self.config.band_min
            else Refusal.too_easy
            if share > self.config.band_max
            else None
        )
        if refusal is None:
            record_attempts(self.run, task, attempts, self.temperature, self.model)
            self._write(POOL_FILE, task.model_dump(mode="json"))
        return ProposalRecord(
            index=index,
            kept=refusal is None,
            refusal=refusal,
            task_id=task.id,
            solved=solved,
            samples=len(attempts),
            proposal=proposal,
            detail=f"solved {solved}/{len(attempts)}",
        )

    def _write(self, name: str, row: dict[str, Any]) -> None:
        with (self.run.path / name).open("a") as out:
            out.write(json.dumps(row, sort_keys=True) + "\n")


def _fate(record: ProposalRecord) -> str:
    verdict = "kept" if record.kept else f"refused ({record.refusal.value if record.refusal else '?'})"
    return f"{verdict}{': ' + record.detail if record.detail else ''}"
