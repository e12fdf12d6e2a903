"""The agent's tools: bash, view, create, str_replace, submit. Each returns text for the model."""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool

from .config import AgentConfig
from .workspace import Workspace


def clip(text: str, limit: int) -> str:
    """Keep the head and the tail (errors are usually at the end) and say what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def make_tools(workspace: Workspace, config: AgentConfig) -> list[BaseTool]:
    def bash(command: str) -> str:
        """Run a bash command in the workspace and return its exit code and output."""
        code, output = workspace.run(command, config.command_timeout)
        return clip(f"exit code {code}\n{output}", config.observation_chars)

    def view(path: str) -> str:
        """Show a file with line numbers, or list a folder."""
        code, listing = workspace.run(
            f"test -d {_quote(path)} && ls -la {_quote(path)}", config.command_timeout
        )
        if code == 0:
            return clip(listing, config.observation_chars)
        try:
            lines = workspace.read(path).splitlines()
        except Exception as exc:  # noqa: BLE001 - the model reads the error and adapts
            return f"error: cannot read {path}: {exc}"
        return clip(
            "\n".join(f"{n:4d} {line}" for n, line in enumerate(lines, 1)) or "(empty file)",
            config.observation_chars,
        )

    def create(path: str, content: str) -> str:
        """Write content to a file, replacing it if it exists."""
        workspace.write(path, content)
        return f"wrote {len(content)} characters to {path}"

    def str_replace(path: str, old: str, new: str) -> str:
        """Replace one exact occurrence of `old` with `new` in a file."""
        try:
            text = workspace.read(path)
        except Exception as exc:  # noqa: BLE001
            return f"error: cannot read {path}: {exc}"
        count = text.count(old)
        if count != 1:
            return f"error: `old` occurs {count} times in {path}; it must occur exactly once"
        workspace.write(path, text.replace(old, new))
        return f"replaced 1 occurrence in {path}"

    def submit(summary: str = "") -> str:
        """Finish the task. Call this when the solution is written and tested."""
        return "submitted"

    return [StructuredTool.from_function(f) for f in (bash, view, create, str_replace, submit)]


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"
