"""Scoring: hidden tests run in a fresh sandbox (``Evaluator``), results and pass@k in SQLite."""

from agentevo.evaluate.evaluator import EvalResult, Evaluator, TestOutcome, workspace_files
from agentevo.evaluate.results import (
    AgentSummary,
    ErrorKind,
    ResultRow,
    ResultsStore,
    SpoiledTry,
    pass_at_k,
)

__all__ = [
    "AgentSummary",
    "ErrorKind",
    "EvalResult",
    "Evaluator",
    "ResultRow",
    "ResultsStore",
    "SpoiledTry",
    "TestOutcome",
    "pass_at_k",
    "workspace_files",
]
