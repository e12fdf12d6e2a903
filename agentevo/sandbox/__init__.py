"""Hardened sandboxes: where agent-written code runs, and nowhere else.

Callers start one with ``start_sandbox`` (or a ``SandboxPool``), drive it as a ``RunningSandbox`` and catch the
errors below; the provider that ``SandboxConfig.provider`` names (Docker) does the rest.
"""

from agentevo.sandbox import images
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.errors import (
    DockerUnavailable,
    ImageMissing,
    SandboxDied,
    SandboxError,
    SandboxOperationError,
    SandboxUnavailable,
)
from agentevo.sandbox.pool import SandboxPool
from agentevo.sandbox.provider import ExecResult, RunningSandbox, SandboxProvider
from agentevo.sandbox.providers import provider_for, start_sandbox
from agentevo.sandbox.reaper import reap
from agentevo.sandbox.sandbox import AsyncSandbox, Sandbox

__all__ = [
    "AsyncSandbox",
    "DockerUnavailable",
    "ExecResult",
    "ImageMissing",
    "RunningSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxDied",
    "SandboxError",
    "SandboxOperationError",
    "SandboxPool",
    "SandboxProvider",
    "SandboxUnavailable",
    "images",
    "provider_for",
    "reap",
    "start_sandbox",
]
