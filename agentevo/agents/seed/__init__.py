"""The seed coding agent: a small LangGraph loop that evolution starts from.

Self-contained on purpose: in isolated mode this folder is copied into a sandbox and run there
with only langgraph, langchain-core, openai and pydantic available. See AGENT.md.
"""

from .config import AgentConfig
from .graph import build_agent, initial_state, run_config, task_prompt
from .workspace import LocalWorkspace, Workspace

__all__ = [
    "AgentConfig",
    "LocalWorkspace",
    "Workspace",
    "build_agent",
    "initial_state",
    "run_config",
    "task_prompt",
]
