"""Sections of the report that exist only when a run used them: experience memory and LoRA adapters.

Both live outside the run folder (one lesson library and one adapter registry serve many runs), so each reader
takes the run's own settings (``run.json``'s configuration) and keeps what concerns the run: lessons drawn from
its episodes, adapters that served its calls. Each returns None when there is nothing, and the page says so.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from agentevo.config import AgentevoConfig
from agentevo.runs import CALLS_FILE, MEMORY_DIR, RUN_FILE

TOP_LESSONS = 10


class LessonLine(BaseModel):
    id: str
    lesson: str
    status: str
    retrieved: int
    helped: int
    hurt: int


class GrowthPoint(BaseModel):
    at: datetime
    lessons: int
    active: int


class MemoryView(BaseModel):
    """The lessons drawn from the run's episodes over time, and the library's most retrieved lessons."""

    source: str
    growth: list[GrowthPoint]
    top: list[LessonLine]
    note: str = ""


class AdapterLine(BaseModel):
    name: str
    created: datetime | None = None
    active: bool = False
    metrics: dict[str, float] = Field(default_factory=dict)
    calls: int = Field(0, description="LLM calls of this run the adapter served.")
    note: str = ""


class AdaptersView(BaseModel):
    """The adapter registry's versions with their scores, which one is served, and what served this run."""

    source: str
    adapters: list[AdapterLine]


def read_memory(run_id: str, config: AgentevoConfig) -> MemoryView | None:
    """The run's lessons from the library it used; None when there is no library (or it holds no lesson)."""
    memory = config.memory
    path = memory.path or config.archives_dir / MEMORY_DIR
    if not memory.url and not path.is_dir():
        return None
    from agentevo.memory.library import Library  # chromadb and the embedder load only when there is a library
    from agentevo.memory.store import MemoryStoreError

    source = memory.url or str(path)
    try:
        with Library.open(memory, default_path=path) as library:
            lessons = library.lessons() + library.lessons(evicted=True)
    except MemoryStoreError as exc:
        return MemoryView(source=source, growth=[], top=[], note=str(exc))
    if not lessons:
        return None
    mine = sorted(
        (lesson for lesson in lessons if any(run_id in (p.run_id, p.source) for p in lesson.provenance)),
        key=lambda lesson: min(p.created_at for p in lesson.provenance),
    )
    growth = [
        GrowthPoint(
            at=datetime.fromtimestamp(min(p.created_at for p in lesson.provenance), UTC),
            lessons=i + 1,
            active=sum(x.status.value == "active" for x in mine[: i + 1]),
        )
        for i, lesson in enumerate(mine)
    ]
    retrieved = sorted((x for x in lessons if x.counters.retrieved), key=lambda x: -x.counters.retrieved)
    top = [
        LessonLine(
            id=x.id[:12],
            lesson=x.prompt_text(),
            status=x.status.value,
            retrieved=x.counters.retrieved,
            helped=x.counters.helped,
            hurt=x.counters.hurt,
        )
        for x in retrieved[:TOP_LESSONS]
    ]
    note = f"{len(mine)} of the library's {len(lessons)} lessons were drawn from this run"
    return MemoryView(source=source, growth=growth, top=top, note=note)


def read_adapters(run_dir: Path, config: AgentevoConfig) -> AdaptersView | None:
    """The registry's versions (metrics, active, last decision) and the calls of this run each one served."""
    from agentevo.train.registry import AdapterRegistry, RegistryError

    registry = AdapterRegistry(config.train.adapters_dir, config.train.name)
    try:
        versions, state = registry.versions(), registry.state()
    except RegistryError as exc:
        return AdaptersView(source=str(registry.root), adapters=[AdapterLine(name="?", note=str(exc))])
    if not versions:
        return None
    served = _served_models(run_dir)
    reasons = {d.candidate: f"{d.action}: {d.reason}" for d in state.decisions}
    lines = [
        AdapterLine(
            name=v.name,
            created=datetime.fromtimestamp(v.created, UTC),
            active=v.name == state.active,
            metrics={k: float(x) for k, x in v.metrics.items() if isinstance(x, int | float)},
            calls=served.get(v.name, 0),
            note=reasons.get(v.name, ""),
        )
        for v in versions
    ]
    return AdaptersView(source=str(registry.root), adapters=lines)


def _served_models(run_dir: Path) -> Counter[str]:
    """How many of the run's recorded calls each model name served."""
    path = run_dir / CALLS_FILE
    counts: Counter[str] = Counter()
    if path.exists():
        with path.open() as fh:
            for line in fh:
                if line.endswith("\n"):
                    counts[json.loads(line).get("model") or ""] += 1
    return counts


def run_config(run_dir: Path, fallback: AgentevoConfig) -> AgentevoConfig:
    """The configuration the run was started with (``run.json``), its relative folders resolved against where it
    was started (the parent of its archives folder); ``fallback`` when the run recorded none that still loads."""
    from pydantic import ValidationError

    try:
        recorded = json.loads((run_dir / RUN_FILE).read_text())["config"]
        config = AgentevoConfig.model_validate(recorded)
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        config = fallback
    archives = Path(config.archives_dir)
    started_in = run_dir.parent.parent if run_dir.parent.name == archives.name else Path.cwd()
    update = {"archives_dir": run_dir.parent}
    train = config.train.model_copy(update={"adapters_dir": started_in / config.train.adapters_dir})
    memory = config.memory
    if memory.path is not None and not memory.path.is_absolute():
        memory = memory.model_copy(update={"path": started_in / memory.path})
    return config.model_copy(update={**update, "train": train, "memory": memory})
