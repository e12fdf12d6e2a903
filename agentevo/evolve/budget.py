"""The run's budgets: nodes, tokens, money, wall time. The first one reached stops the run cleanly and is named.

Money is counted, not estimated: each recorded LLM call's prompt and completion tokens times its model's price
(``evolve.prices``, dollars per million tokens; ``*`` prices any model not named). Calls of unpriced models cost
nothing, so a money budget with no price that applies is refused when the run starts. A job costs money while it
runs, so a job starts only when what is spent plus what the jobs in flight are expected to spend (each the mean
cost of a finished job so far) leaves room for it: the cap is not overshot by a whole batch of jobs.

The budgets are the run's, not a session's: tokens and dollars come from the run's call record, and wall
seconds spent by earlier sessions are kept in ``budget.json`` (saved every tick), so a resumed run continues
the clock where the killed one left it (give or take one tick).
"""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path

from agentevo.config.evolve import Price
from agentevo.files import read_json, write_json_atomic
from agentevo.runs import BUDGET_FILE, CALLS_FILE


class StopCause(str, Enum):
    """Why a run ended."""

    finished = "finished"  # nothing left to do: every node gated and evaluated as far as its stages allow
    nodes = "nodes"
    tokens = "tokens"
    dollars = "dollars"
    seconds = "seconds"
    interrupted = "interrupted"  # Ctrl-C or SIGTERM: running jobs were finished, nothing new started
    failing = "failing"  # jobs kept failing (the error of the last one is reported)


def call_dollars(record: dict, prices: dict[str, Price]) -> float:
    """What one recorded LLM call cost: its tokens at its model's price (or ``*``'s); 0.0 when unpriced."""
    price = prices.get(record.get("model") or "", prices.get("*"))
    if price is None:
        return 0.0
    return (
        record.get("prompt_tokens", 0) * price.prompt + record.get("completion_tokens", 0) * price.completion
    ) / 1e6


class TokenMeter:
    """Tokens and dollars of every LLM call of the run (episodes, diagnoses, meta-steps), read incrementally
    from the gateway's ``llm_calls.jsonl``: the record survives a crash, so a resumed run keeps counting from it."""

    def __init__(self, run_dir: Path, prices: dict[str, Price] | None = None) -> None:
        self.path = Path(run_dir) / CALLS_FILE
        self.prices = prices or {}
        self.offset = 0
        self.total = 0
        self.dollars = 0.0

    def read(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                for line in fh:
                    if not line.endswith(b"\n"):  # a line still being written: read it next time
                        break
                    self.offset += len(line)
                    record = json.loads(line)
                    self.total += record.get("prompt_tokens", 0) + record.get("completion_tokens", 0)
                    self.dollars += call_dollars(record, self.prices)
        return self.total


class Budgets:
    def __init__(
        self,
        run_dir: Path,
        *,
        nodes: int,
        tokens: int | None,
        seconds: float | None,
        dollars: float | None = None,
        prices: dict[str, Price] | None = None,
    ) -> None:
        if dollars is not None and not prices:
            raise ValueError(
                "evolve.max_dollars needs evolve.prices (dollars per 1M tokens per model, or `*`)"
            )
        self.nodes, self.tokens, self.seconds, self.dollars = nodes, tokens, seconds, dollars
        self.meter = TokenMeter(run_dir, prices)
        self.spent_file = Path(run_dir) / BUDGET_FILE
        self.before = float(read_json(self.spent_file).get("seconds", 0.0))  # earlier sessions of this run
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Wall seconds of the whole run: this session's and every earlier one's."""
        return self.before + time.monotonic() - self.started

    def save(self) -> None:
        """Keep the wall time spent so far, for the next session of this run."""
        write_json_atomic(self.spent_file, {"seconds": round(self.elapsed, 3)})

    def affords(self, in_flight: int, finished: int) -> bool:
        """Whether one more job fits the dollar cap, with the jobs in flight reserved at the mean job's cost."""
        if self.dollars is None:
            return True
        self.meter.read()
        per_job = self.meter.dollars / finished if finished else 0.0
        return self.meter.dollars + (in_flight + 1) * per_job < self.dollars

    def spent(self) -> StopCause | None:
        """A budget that stops everything (tokens, time), if one is spent."""
        tokens = self.meter.read()
        if self.tokens is not None and tokens >= self.tokens:
            return StopCause.tokens
        if self.dollars is not None and self.meter.dollars >= self.dollars:
            return StopCause.dollars
        if self.seconds is not None and self.elapsed >= self.seconds:
            return StopCause.seconds
        return None

    def may_expand(self, nodes: int, pending: int) -> bool:
        return nodes + pending < self.nodes
