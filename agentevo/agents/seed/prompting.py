"""What both strategies put before the task: lessons from memory, worked examples, and code read from replies."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage

from .genome import Demo

# A fenced block (closed or cut off by the token limit), or failing that the code from the entry point's def on.
FENCED = re.compile(r"```(?:python|py)?[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def lesson_tips(lessons: list[dict[str, Any]] | None) -> str:
    """Lessons as a paragraph for the first message ('' without any)."""
    if not lessons:
        return ""
    tips = "\n".join(f"- When {x['trigger'].rstrip('.')}: {x['lesson']}" for x in lessons)
    return f"\n\nLessons from earlier tasks (follow them where they apply):\n{tips}"


def demo_messages(demos: list[Demo], task_id: str) -> list[AnyMessage]:
    """Worked examples as earlier turns: each task, then its verified solution (never the task's own)."""
    turns: list[AnyMessage] = []
    for demo in demos:
        if demo.task_id != task_id:
            turns += [HumanMessage(demo.task), AIMessage(f"```python\n{demo.solution.strip()}\n```")]
    return turns


def code_of(reply: str, entry_point: str) -> str | None:
    """The code a reply holds: its first fenced block that defines ``entry_point``, else its first block, else
    the text from ``def entry_point(`` on; None when there is none."""
    blocks = [b.strip() for b in FENCED.findall(reply) if b.strip()]
    defining = [b for b in blocks if f"def {entry_point}(" in b]
    if defining or blocks:
        return (defining or blocks)[0] + "\n"
    start = reply.find(f"def {entry_point}(")
    return reply[start:].strip() + "\n" if start >= 0 else None
