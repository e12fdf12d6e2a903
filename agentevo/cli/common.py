"""What every CLI command shares: the console, the loaded config, and error reporting."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import typer
from rich.console import Console

from agentevo.config import AgentevoConfig
from agentevo.llm.config import BACKBONES, Backbone, is_backbone
from agentevo.sandbox.errors import SandboxError

# soft_wrap: an error or a path is one line a user can copy, never folded at the terminal width.
console = Console(stderr=True, soft_wrap=True)
INTERRUPTED = 130  # the shell's code for a command ended by SIGINT (and here by SIGTERM: see stop_on_sigterm)


@dataclass
class _State:
    config: AgentevoConfig | None = None


state = _State()


def config() -> AgentevoConfig:
    return state.config or AgentevoConfig()


def expected_errors() -> tuple[type[Exception], ...]:
    """Failures a user can act on from the message alone: shown as one line, not a traceback."""
    from agentevo.llm.backbone import BackboneSetupError
    from agentevo.llm.local import LocalModelError
    from agentevo.llm.model_store import ModelFetchError
    from agentevo.llm.supervised import ServerError
    from agentevo.tasks import SuiteError

    return SandboxError, BackboneSetupError, ModelFetchError, LocalModelError, ServerError, SuiteError


def backbone_choice(name: str) -> Backbone:
    """``--backbone``'s value, checked (typer has no choices of a Literal); a usage error names the choices."""
    if not is_backbone(name):
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(BACKBONES)}", param_hint="--backbone")
    return name


def with_backbone(settings: AgentevoConfig, backbone: str | None) -> AgentevoConfig:
    """``settings`` with ``--backbone`` (checked) when given: a new configuration for the command to pass down,
    the shared one loaded for every command left as it was."""
    if not backbone:
        return settings
    llm = settings.llm.model_copy(update={"backbone": backbone_choice(backbone)})
    return settings.model_copy(update={"llm": llm})


def note(line: str) -> None:
    """Tell the user, on one line, something the command did that they may not have expected."""
    console.print(f"[yellow]note:[/] {line}", highlight=False)


def stop_on_sigterm() -> None:
    """SIGTERM ends the command the way Ctrl-C does, so a backbone server it started is stopped too."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@contextlib.contextmanager
def interruptible(then: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM in the block ends the command with one line (``then``: what the user can do next) and
    exit code 130, once the block's own cleanup (a backbone it started, a model it loaded) has run."""
    try:
        yield
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted:[/] {then}", highlight=False)
        raise typer.Exit(INTERRUPTED) from None


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Turn expected failures into one red line and exit code 1 instead of a traceback."""
    try:
        yield
    except expected_errors() as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
