"""Reading the model's reply as one browser action."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERNS = (
    ("fill", re.compile(r"fill\(\s*\[?(\d+)\]?\s*,\s*[\"'](.*?)[\"']\s*\)", re.DOTALL)),
    ("click", re.compile(r"click\(\s*\[?(\d+)\]?\s*\)")),
    ("press", re.compile(r"press\(\s*[\"']?([A-Za-z0-9+]+)[\"']?\s*\)")),
    ("scroll", re.compile(r"scroll\(\s*(-?\d+)\s*\)")),
    ("stop", re.compile(r"stop\(\s*\)")),
)


@dataclass(frozen=True)
class Action:
    name: str
    args: dict

    def __str__(self) -> str:
        inner = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in self.args.values())
        return f"{self.name}({inner})"


def parse_action(reply: str) -> Action | None:
    """The first action written in ``reply`` (earliest position wins), or None."""
    found: list[tuple[int, Action]] = []
    for name, pattern in _PATTERNS:
        match = pattern.search(reply)
        if not match:
            continue
        groups = match.groups()
        args: dict = {}
        if name == "fill":
            args = {"id": int(groups[0]), "text": groups[1]}
        elif name == "click":
            args = {"id": int(groups[0])}
        elif name == "press":
            args = {"key": groups[0]}
        elif name == "scroll":
            args = {"dy": int(groups[0])}
        found.append((match.start(), Action(name, args)))
    return min(found, key=lambda item: item[0])[1] if found else None
