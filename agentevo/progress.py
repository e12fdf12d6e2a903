"""Where long steps report progress: stderr, so a command's stdout stays what the user asked for."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Log = Callable[[str], Any]
"""Where a long step writes its progress lines (``progress`` by default; a test or the CLI may pass its own)."""


def progress(message: str) -> None:
    """One progress line on stderr (the default ``log`` of model fetches, builds and server starts)."""
    print(message, file=sys.stderr, flush=True)
