"""The LLM gateway: the only way sandboxed agents reach a model, metered and recorded."""

from agentevo.gateway.backends import BackboneError, Backend, ChatModelBackend, Fault, HTTPBackend
from agentevo.gateway.budget import Budget, Usage
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.gateway.server import EpisodeAccess, Gateway

__all__ = [
    "BackboneError",
    "Backend",
    "Budget",
    "CallRecord",
    "ChatModelBackend",
    "EpisodeAccess",
    "Fault",
    "Gateway",
    "HTTPBackend",
    "TrajectoryRecorder",
    "Usage",
]
