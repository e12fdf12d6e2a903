"""``opened_chat_model`` (``agentevo finetune``'s sampling round) leaves nothing running: the llama.cpp server it
started is stopped when the block ends, found through the chat model it served (``served_by``)."""

from __future__ import annotations

import socket
import time

import pytest

from agentevo.config import AgentevoConfig
from agentevo.llm.config import LlamaCppBackboneConfig, LLMConfig
from agentevo.llm.supervised import served_by
from agentevo.procs import group_members
from agentevo.train.gather import opened_chat_model

pytestmark = pytest.mark.model  # a real llama.cpp server on the embedded model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_server_the_block_started_is_stopped_when_it_ends():
    llamacpp = LlamaCppBackboneConfig(port=_free_port(), parallel=1, ctx_per_slot=2048, startup_timeout=120)
    settings = AgentevoConfig(llm=LLMConfig(backbone="llamacpp", llamacpp=llamacpp))
    with opened_chat_model(settings) as chat_model:
        server = served_by(chat_model)
        assert server is not None and server.owned and server.pid is not None
        pid = server.pid
        assert group_members(pid), "the server runs while the block does"
        assert chat_model.invoke("Say hi.", max_tokens=4).content
    deadline = time.monotonic() + 30
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(pid) == [], "the server outlived the block"
