"""The trajectory store: every LLM call, one JSON line, in one append-only file per run."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentevo.files import append_jsonl
from agentevo.runs import CALLS_FILE


class CallRecord(BaseModel):
    """One LLM call as the gateway saw it. Memory distillation and fine-tuning read these."""

    call_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    time: float = Field(default_factory=time.time)
    run_id: str
    agent_id: str | None = None
    task_id: str | None = None
    episode_id: str | None = None
    model: str | None = None
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    status: int = 200
    error: str | None = None
    structured_failure: str | None = Field(
        None,
        description="Why the answer lacks the structure the request asked for (response_format or tools): "
        "a StructuredFailure value such as truncated or repetition.",
    )
    retried: list[str] = Field(
        default_factory=list, description="Why each earlier try of this call failed and was sent again."
    )


class TrajectoryRecorder:
    """Appends records to ``<run dir>/llm_calls.jsonl``.

    Each record is one line written whole (``append_jsonl``), so several threads or processes can
    record into one run without interleaving lines.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / CALLS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: CallRecord) -> None:
        append_jsonl(self.path, record)

    def read(self) -> list[CallRecord]:
        if not self.path.exists():
            return []
        return [
            CallRecord.model_validate(json.loads(line)) for line in self.path.read_text().splitlines() if line
        ]
