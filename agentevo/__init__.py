"""agentevo: agents that improve themselves, run safely.

The public API is re-exported here; see ``examples/`` for short programs that use it.
"""

from agentevo.config import AgentevoConfig, ConfigError, load_config
from agentevo.sandbox import AsyncSandbox, ExecResult, Sandbox, SandboxConfig, SandboxPool

__version__ = "0.1.0"

__all__ = [
    "AgentevoConfig",
    "AsyncSandbox",
    "ConfigError",
    "ExecResult",
    "Sandbox",
    "SandboxConfig",
    "SandboxPool",
    "load_config",
]
