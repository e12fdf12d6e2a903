"""agentevo: agents that improve themselves, run safely.

The public API is re-exported here; see ``examples/`` for short programs that use it.
"""

from agentevo.agents import EpisodeBudget, EpisodeOutcome, run_isolated, run_sdk, seed_agent_dir
from agentevo.agents.seed import AgentConfig  # the seed agent's own settings, for SDK mode
from agentevo.config import AgentevoConfig, ConfigError, load_config
from agentevo.evaluate import EvalResult, Evaluator, ResultsStore
from agentevo.gateway import Budget, Gateway
from agentevo.llm.backbone import make_chat_model
from agentevo.orchestrate import run_suite
from agentevo.sandbox import AsyncSandbox, ExecResult, Sandbox, SandboxConfig, SandboxPool
from agentevo.tasks import Task, load_suite

__version__ = "0.1.0"

__all__ = [
    "AgentConfig",
    "AgentevoConfig",
    "AsyncSandbox",
    "Budget",
    "ConfigError",
    "EpisodeBudget",
    "EpisodeOutcome",
    "EvalResult",
    "Evaluator",
    "ExecResult",
    "Gateway",
    "ResultsStore",
    "Sandbox",
    "SandboxConfig",
    "SandboxPool",
    "Task",
    "load_config",
    "load_suite",
    "make_chat_model",
    "run_isolated",
    "run_sdk",
    "run_suite",
    "seed_agent_dir",
]
