"""Hardened Docker sandboxes: where agent-written code runs, and nowhere else."""

from agentevo.sandbox import images
from agentevo.sandbox.config import SandboxConfig
from agentevo.sandbox.errors import (
    DockerUnavailable,
    ImageMissing,
    SandboxDied,
    SandboxError,
    SandboxOperationError,
)
from agentevo.sandbox.pool import SandboxPool
from agentevo.sandbox.reaper import reap
from agentevo.sandbox.sandbox import AsyncSandbox, ExecResult, Sandbox

__all__ = [
    "AsyncSandbox",
    "DockerUnavailable",
    "ExecResult",
    "ImageMissing",
    "Sandbox",
    "SandboxConfig",
    "SandboxDied",
    "SandboxError",
    "SandboxOperationError",
    "SandboxPool",
    "images",
    "reap",
]
