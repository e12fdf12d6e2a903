"""The run's budgets: nodes, tokens, wall time. The first one reached stops the run cleanly and is named."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path

from agentevo.gateway.recorder import TrajectoryRecorder


class StopCause(str, Enum):
    """Why a run ended."""

    finished = "finished"  # nothing left to do: every node gated and evaluated as far as its stages allow
    nodes = "nodes"
    tokens = "tokens"
    seconds = "seconds"
    failing = "failing"  # jobs kept failing (the error of the last one is reported)


class TokenMeter:
    """Tokens of every LLM call of the run (episodes, diagnoses, meta-steps), read incrementally from the
    gateway's ``llm_calls.jsonl``: the record survives a crash, so a resumed run keeps counting from it."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / TrajectoryRecorder.FILENAME
        self.offset = 0
        self.total = 0

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
        return self.total


class Budgets:
    def __init__(self, run_dir: Path, *, nodes: int, tokens: int | None, seconds: float | None) -> None:
        self.nodes, self.tokens, self.seconds = nodes, tokens, seconds
        self.meter = TokenMeter(run_dir)
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> StopCause | None:
        """A budget that stops everything (tokens, time), if one is spent."""
        if self.tokens is not None and self.meter.read() >= self.tokens:
            return StopCause.tokens
        if self.seconds is not None and self.elapsed >= self.seconds:
            return StopCause.seconds
        return None

    def may_expand(self, nodes: int, pending: int) -> bool:
        return nodes + pending < self.nodes
