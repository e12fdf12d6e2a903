"""The LLM gateway: the only way sandboxed agents reach a model, metered and recorded."""

from agentevo.gateway.backends import Backend, BackboneError, ChatModelBackend, HTTPBackend
from agentevo.gateway.budget import Budget, Usage
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.gateway.server import CONTAINER_SOCKET, EpisodeAccess, Gateway

__all__ = [
    "BackboneError",
    "Backend",
    "Budget",
    "CONTAINER_SOCKET",
    "CallRecord",
    "ChatModelBackend",
    "EpisodeAccess",
    "Gateway",
    "HTTPBackend",
    "TrajectoryRecorder",
    "Usage",
]
