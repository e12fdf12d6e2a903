"""The browser tool set an agent acts with: observe, click(id), fill(id, text), press(key), scroll, goto.

Standard library only (LangChain tools are built on demand): part of the contract, so a copy of this module is
in every agent's sandbox as ``agentevo/contract/browser.py`` and any agent (the seed or an evolved one) can
import it. The tools talk to the browser server's agent socket (``contract``-named path in the
sandbox, ``BROWSER_SOCKET_ENV``); the server, not this module, decides what is allowed, so an agent that
edits its copy gains nothing. The host uses ``LineClient`` for the control socket.
"""

from __future__ import annotations

import io
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BROWSER_SOCKET_ENV = "AGENTEVO_BROWSER_SOCKET"
BROWSER_SOCKET_IN_SANDBOX = "/run/agentevo/browser.sock"


class BrowserServerError(RuntimeError):
    """The browser server refused a request or stopped answering; the message says which."""


class LineClient:
    """A connection to one of the browser server's Unix sockets: one JSON object per line each way."""

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._conn: tuple[socket.socket, io.BufferedReader] | None = None
        self._connect()

    def _connect(self) -> tuple[socket.socket, io.BufferedReader]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise BrowserServerError(f"cannot connect to the browser server at {self.path}: {exc}") from None
        self._conn = (sock, sock.makefile("rb"))
        return self._conn

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        """Send ``op`` with ``args``; the answer's data, or BrowserServerError with the server's reason.

        A connection that failed or timed out is dropped (the next request opens a new one), so an answer
        that arrives late is never read as the answer to a later request.
        """
        sock, reader = self._conn or self._connect()
        try:
            sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
            line = reader.readline()
        except OSError as exc:
            self.close()
            raise BrowserServerError(f"the browser server did not answer {op!r}: {exc}") from None
        if not line:
            self.close()
            raise BrowserServerError(f"the browser server closed the connection during {op!r}")
        answer = json.loads(line)
        if not answer.pop("ok", False):
            raise BrowserServerError(f"{op}: {answer.get('error', 'refused')}")
        return answer

    def close(self) -> None:
        if self._conn is not None:
            sock, reader = self._conn
            reader.close()
            sock.close()
        self._conn = None


@dataclass(frozen=True)
class Observation:
    """What the agent sees: the goal, the page as a compact tree (``[id] role "name"`` lines), and the last
    action's error. ``done`` says the page ended the episode (not whether it was won)."""

    goal: str
    url: str
    tree: str
    done: bool
    error: str | None
    truncated: bool

    def text(self) -> str:
        """The observation as the model reads it."""
        parts = [f"Goal: {self.goal}", f"Page:\n{self.tree}"]
        if self.error:
            parts.append(f"Last action failed: {self.error}")
        if self.done:
            parts.append("The episode is over.")
        return "\n".join(parts)


class BrowserTools:
    """The six browser actions. Every action returns the page as it is afterwards."""

    def __init__(self, socket_path: str | Path, timeout: float = 180.0) -> None:
        self._client = LineClient(socket_path, timeout)

    @classmethod
    def from_env(cls) -> BrowserTools:
        """The tools of this sandbox's browser (the host sets ``BROWSER_SOCKET_ENV``)."""
        return cls(os.environ.get(BROWSER_SOCKET_ENV, BROWSER_SOCKET_IN_SANDBOX))

    def _call(self, op: str, **args: Any) -> Observation:
        data = self._client.request(op, **args)
        return Observation(
            goal=data["goal"],
            url=data["url"],
            tree=data["tree"],
            done=data["done"],
            error=data["error"],
            truncated=data["truncated"],
        )

    def observe(self) -> Observation:
        return self._call("observe")

    def click(self, id: int) -> Observation:
        return self._call("click", id=id)

    def fill(self, id: int, text: str) -> Observation:
        return self._call("fill", id=id, text=text)

    def press(self, key: str) -> Observation:
        return self._call("press", key=key)

    def scroll(self, dy: int = 300) -> Observation:
        return self._call("scroll", dy=dy)

    def goto(self, url: str) -> Observation:
        return self._call("goto", url=url)

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        """A raw request, as an agent could send one (the server refuses anything but the six actions)."""
        return self._client.request(op, **args)

    def langchain_tools(self) -> list:
        """The actions as LangChain tools for a tool-calling graph; each returns the observation's text."""
        from langchain_core.tools import StructuredTool

        def click(id: int) -> str:
            """Click the element with this id from the page tree."""
            return self.click(id).text()

        def fill(id: int, text: str) -> str:
            """Replace the text of the input with this id."""
            return self.fill(id, text).text()

        def press(key: str) -> str:
            """Press a key, e.g. Enter, Tab, ArrowDown, Control+a."""
            return self.press(key).text()

        def scroll(dy: int = 300) -> str:
            """Scroll the page by dy pixels (negative: up)."""
            return self.scroll(dy).text()

        def observe() -> str:
            """Look at the page again."""
            return self.observe().text()

        return [StructuredTool.from_function(fn) for fn in (click, fill, press, scroll, observe)]

    def close(self) -> None:
        self._client.close()
