"""The examples a task statement shows (``f(2)`` returns ``5``; doctests; ``assert`` lines), as checks to run.

They are public: the statement shows them to the agent. Running a candidate answer on them in the sandbox is
how the agent keeps a right answer among wrong ones (sample-then-filter); the hidden tests stay with the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RETURNS = re.compile(r"`([A-Za-z_]\w*\(.*?\))` returns `(.+?)`(?=[.,;:]?\s|[.,;:]?$)", re.MULTILINE)
DOCTEST = re.compile(r"^\s*>>> (.+)\n\s*(?!>>>)(\S.*)$", re.MULTILINE)
ASSERT = re.compile(r"^\s*(assert .+)$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """One shown example: ``check`` is a statement that raises when a candidate gets it wrong; ``call`` the
    expression whose value it checks, when known (answers are grouped by these values)."""

    check: str
    call: str | None = None


def visible_examples(instructions: str, entry_point: str) -> list[Example]:
    """The statement's examples that call ``entry_point``, in order, each once."""
    found = [
        Example(f"assert ({call}) == ({value})", call)
        for call, value in [*RETURNS.findall(instructions), *DOCTEST.findall(instructions)]
    ]
    found += [Example(line.strip()) for line in ASSERT.findall(instructions)]
    mine = [e for e in found if f"{entry_point}(" in e.check]
    return list(dict.fromkeys(mine))
