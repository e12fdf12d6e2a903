"""From configuration to a running backbone the gateway can forward to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from agentevo.config import AgentevoConfig, ResilienceConfig
from agentevo.gateway.backends import Backend, ChatModelBackend, HTTPBackend
from agentevo.gateway.retry import RequestRetry
from agentevo.llm.backbone import BackboneSetupError, make_chat_model, openai_api_key
from agentevo.llm.local import LocalChatModel
from agentevo.llm.supervised import served_by
from agentevo.llm.watchdog import BackboneWatchdog, WatchdogConfig
from agentevo.serving.adapters import serve_active


def watchdog_config(resilience: ResilienceConfig) -> WatchdogConfig:
    return WatchdogConfig(
        interval=resilience.health_interval,
        deadline=resilience.health_deadline,
        max_restarts=resilience.backbone_restarts,
    )


def request_retry(resilience: ResilienceConfig) -> RequestRetry:
    return RequestRetry(retries=resilience.request_retries)


@contextlib.contextmanager
def open_backend(config: AgentevoConfig, *, concurrent: bool = False) -> Iterator[Backend]:
    """The configured backbone, ready for the gateway, for as long as the block runs.

    ``openai`` is forwarded as HTTP with the key added (requests pass through untouched); ``local``,
    ``llamacpp`` and ``vllm`` are served through their chat models, whose tool calling is the fenced fallback.
    ``concurrent`` says several episodes will call at once, which lets ``auto`` choose vLLM where it is the
    fastest engine. A supervised server (``llamacpp``, ``vllm``) is watched and restarted when it dies or hangs
    (``resilience`` settings); the backend's ``health`` is its watchdog. Such a server also serves the active
    adapter of ``train.adapters_dir`` (``agentevo adapters``) to requests that name no model.
    """
    llm = config.llm
    if llm.backbone == "openai":
        if not llm.base_url:
            raise BackboneSetupError("llm.base_url is required for the openai backbone")
        backend: Backend = HTTPBackend(
            llm.base_url,
            llm.model,
            api_key=openai_api_key(llm),
            timeout=llm.timeout,
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
        )
        yield backend
        return
    chat_model = make_chat_model(llm, config.cache_dir, concurrent=concurrent)
    server = served_by(chat_model)  # a supervised server this process may own
    if server is None:
        try:
            yield ChatModelBackend(chat_model, llm.model)
        finally:
            if isinstance(chat_model, LocalChatModel):  # no generation may outlive the block (llm/closing.py)
                chat_model.close()
        return
    try:
        backend = ChatModelBackend(chat_model, llm.model)
        # The promoted LoRA adapter, when agentevo.train made one active; loaded before the watch begins (a
        # llama.cpp adapter load restarts the server).
        serve_active(config, backend)
        with BackboneWatchdog(server, watchdog_config(config.resilience)) as watchdog:
            backend.health = watchdog
            yield backend
    finally:
        server.stop()  # after the watchdog stopped watching, or the stop would look like a fault
