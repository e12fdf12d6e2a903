"""The ``openai`` backbone's API key: checked by one function for the chat model and the gateway's backend alike."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from agentevo.config import AgentevoConfig
from agentevo.gateway.backends import Backend
from agentevo.llm.backbone import LOOPBACK_KEY, BackboneSetupError, make_chat_model, on_loopback
from agentevo.llm.config import LLMConfig
from agentevo.serving.backbone import open_backend
from tests.faults.upstream import Handler

KEY_ENV = "AGENTEVO_TEST_KEY"


class _Upstream(Handler):
    """The fault tests' OpenAI-compatible upstream, remembering the Authorization each ``GET`` brought."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        super().do_GET()


@pytest.fixture
def upstream_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def _models(backend: Backend) -> list[str]:
    try:
        return await backend.models()
    finally:
        await backend.aclose()


def _config(url: str) -> AgentevoConfig:
    llm = LLMConfig(backbone="openai", base_url=url, model="upstream", api_key_env=KEY_ENV)
    return AgentevoConfig(llm=llm)


def test_a_missing_key_is_refused_the_same_way_by_the_chat_model_and_the_gateway_backend(
    monkeypatch, tmp_path
):
    """A remote endpoint (never contacted: the check comes first) with no key is refused before any call."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    config = _config("https://models.invalid/v1")
    with pytest.raises(BackboneSetupError) as by_model:
        make_chat_model(config.llm, tmp_path)
    with pytest.raises(BackboneSetupError) as by_backend, open_backend(config):
        pass
    assert str(by_model.value) == str(by_backend.value)
    assert f"${KEY_ENV} is not set" in str(by_backend.value) and "llm.api_key_env" in str(by_backend.value)


def test_the_gateway_backend_sends_the_key_it_read(monkeypatch, upstream_url):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    _Upstream.seen.clear()
    with open_backend(_config(upstream_url)) as backend:
        models = asyncio.run(_models(backend))
    assert models == ["upstream"]
    assert _Upstream.seen == ["Bearer sk-test"]


def test_a_server_on_this_machine_needs_no_key(monkeypatch, upstream_url):
    """vLLM and llama-server ask for no key unless started with one: a loopback endpoint gets a placeholder."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    _Upstream.seen.clear()
    with open_backend(_config(upstream_url.replace("127.0.0.1", "localhost"))) as backend:
        assert asyncio.run(_models(backend)) == ["upstream"]
    assert _Upstream.seen == [f"Bearer {LOOPBACK_KEY}"]
    assert [
        on_loopback(u) for u in ("http://[::1]:8000/v1", "http://127.0.0.2/v1", "https://models.invalid/v1")
    ] == [
        True,
        True,
        False,
    ]
