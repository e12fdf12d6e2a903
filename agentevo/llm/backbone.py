"""One way for the rest of agentevo to get its chat model: :func:`make_chat_model` from the ``llm`` config.

Every backbone is a LangChain ``BaseChatModel``, so LangGraph uses any of them the same way. Each honours
``response_format`` (a JSON schema, :mod:`agentevo.llm.structured`). Tool calling goes through
:func:`bind_tools_any`: native ``bind_tools`` where the backbone has it (``openai``), replies held to the tools'
schemas where the backbone constrains decoding but parses no tool calls (``local``, and the servers agentevo
supervises: ``llamacpp``, ``vllm``), and the plain-text fenced-action fallback for a model that can only write text.

Adding a backbone: write ``_make_<name>(config, cache_dir, log) -> BaseChatModel`` and register it in
``_FACTORIES``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable

from agentevo.llm.config import GEMMA_MODEL_NAME, LLMConfig
from agentevo.llm.fenced_tools import FencedToolModel, with_fenced_tools
from agentevo.llm.schema_tools import with_schema_tools
from agentevo.progress import Log, progress

LOOPBACK_KEY = "none"  # what a key-less local server is sent: the OpenAI client refuses an empty key

if TYPE_CHECKING:  # the servers import httpx and the OpenAI client: loaded only for their backbones
    from agentevo.llm.supervised import SupervisedServer

Factory = Callable[[LLMConfig, Path, Log], BaseChatModel]


class BackboneSetupError(RuntimeError):
    """The configured backbone cannot be built; the message names the setting to fix."""


def _make_local(config: LLMConfig, cache_dir: Path, log: Log) -> BaseChatModel:
    from agentevo.llm.local import LocalChatModel
    from agentevo.llm.model_store import MANIFEST_NAME, ensure_embedded_model

    model_dir = config.local.model_dir
    if (
        model_dir is not None
        and (Path(model_dir) / "config.json").is_file()
        and not (Path(model_dir) / MANIFEST_NAME).exists()
    ):
        path = Path(model_dir)  # a folder of the user's own (a merged fine-tune, ...): use it as it is
    else:
        path = ensure_embedded_model(cache_dir, log, model_dir=model_dir)
    return LocalChatModel(
        model_dir=path,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        threads=config.local.threads,
    )


def openai_api_key(config: LLMConfig) -> str:
    """The ``openai`` backbone's API key, read from the host variable ``llm.api_key_env`` names; checked once
    here for the chat model and the gateway's HTTP backend alike. A server on this machine (vLLM, llama-server,
    a loopback ``base_url``) asks for none unless it was started with one, so it gets a placeholder."""
    api_key = os.environ.get(config.api_key_env)
    if not api_key and on_loopback(config.base_url):
        return LOOPBACK_KEY
    if not api_key:
        raise BackboneSetupError(
            f"llm.backbone is openai but ${config.api_key_env} is not set "
            f"(llm.api_key_env names the environment variable that holds the API key)"
        )
    return api_key


def on_loopback(url: str | None) -> bool:
    """Whether ``url`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _make_openai(config: LLMConfig, cache_dir: Path, log: Log) -> BaseChatModel:
    api_key = openai_api_key(config)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=config.base_url,
        api_key=api_key,
        model=config.model,
        timeout=config.timeout,
        max_retries=config.max_retries,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )


def _serve(config: LLMConfig, server: SupervisedServer[Any]) -> BaseChatModel:
    """Start (or reuse) ``server`` and wrap it; it stops with this process if it owns it."""
    from agentevo.llm.supervised import ServedChatModel

    server.start()
    return ServedChatModel(
        base_url=server.base_url,
        api_key="EMPTY",
        model=config.model,
        timeout=config.timeout,
        max_retries=config.max_retries,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        server=server,
    )


def _make_vllm(config: LLMConfig, cache_dir: Path, log: Log) -> BaseChatModel:
    from agentevo.llm.model_store import ensure_embedded_model
    from agentevo.llm.vllm_server import VLLMServer

    model_dir = config.vllm.model or ensure_embedded_model(cache_dir, log)
    return _serve(config, VLLMServer(config.vllm, Path(model_dir), config.model, cache_dir, log=log))


def _make_llamacpp(config: LLMConfig, cache_dir: Path, log: Log) -> BaseChatModel:
    from agentevo.llm.llamacpp_server import LlamaCppServer

    return _serve(config, LlamaCppServer(config.llamacpp, config.model, cache_dir, log=log))


_FACTORIES: dict[str, Factory] = {
    "local": _make_local,
    "openai": _make_openai,
    "vllm": _make_vllm,
    "llamacpp": _make_llamacpp,
}


def resolve_backbone(config: LLMConfig, cache_dir: Path, *, concurrent: bool = False) -> LLMConfig:
    """``config`` with ``auto`` replaced by the backend to use (see ``LLMConfig``).

    Without a GPU, llama.cpp once built (it beats every other CPU engine at one stream and at many); otherwise
    vLLM for concurrent work when installed, else the in-process model. gemma-3-270m: llama.cpp, the one engine
    that serves it.
    """
    if config.backbone != "auto":
        return config
    if config.model == GEMMA_MODEL_NAME:
        return config.model_copy(update={"backbone": "llamacpp"})
    from agentevo.llm.llamacpp_server import llamacpp_installed
    from agentevo.llm.vllm_server import gpu_present, vllm_installed

    if llamacpp_installed(config.llamacpp, Path(cache_dir)) and not gpu_present():
        choice = "llamacpp"
    elif concurrent and vllm_installed(config.vllm, Path(cache_dir)):
        choice = "vllm"
    else:
        choice = "local"
    return config.model_copy(update={"backbone": choice})


def make_chat_model(
    config: LLMConfig, cache_dir: Path, *, log: Log = progress, concurrent: bool = False
) -> BaseChatModel:
    """The chat model the ``llm`` config asks for.

    ``local`` fetches and converts the embedded model first if needed (once; ``agentevo model fetch`` does it
    ahead of time). Raises :class:`BackboneSetupError` for a setting that cannot work (e.g. a missing API key).
    """
    config = resolve_backbone(config, cache_dir, concurrent=concurrent)
    _check_gemma_engine(config)
    factory = _FACTORIES.get(config.backbone)
    if factory is None:
        raise BackboneSetupError(
            f"unknown llm.backbone {config.backbone!r}; known: {', '.join(sorted(_FACTORIES))}"
        )
    return factory(config, Path(cache_dir), log)


def _check_gemma_engine(config: LLMConfig) -> None:
    """gemma-3-270m exists here as a GGUF only: ``local`` and ``vllm`` would load SmolLM2 under its name."""
    own = {"local": config.local.model_dir, "vllm": config.vllm.model}
    if config.model == GEMMA_MODEL_NAME and config.backbone in own and own[config.backbone] is None:
        raise BackboneSetupError(
            f"llm.model {GEMMA_MODEL_NAME} runs on llama.cpp only (its packages ship a GGUF): set llm.backbone to "
            f"llamacpp or auto, or point llm.{config.backbone} at a model folder of your own"
        )


def supports_native_tools(model: Any) -> bool:
    """Whether ``model.bind_tools`` is real tool calling (True for ChatOpenAI; False for the local model).

    A model class can say so itself with a ``native_tool_calling`` class attribute; otherwise any class that
    overrides ``BaseChatModel.bind_tools`` counts as native.
    """
    if isinstance(model, FencedToolModel):
        return False
    flag = getattr(type(model), "native_tool_calling", None)
    if flag is not None:
        return bool(flag)
    if not isinstance(model, BaseChatModel):
        return False
    return type(model).bind_tools is not BaseChatModel.bind_tools


def bind_tools_any(
    model: BaseChatModel,
    tools: Sequence[Any],
    *,
    tool_choice: str | None = None,
    native: bool | None = None,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, AIMessage]:
    """Bind ``tools`` natively when the backbone can, through a schema when it constrains decoding, as text otherwise.

    ``native`` overrides the detection (e.g. False for an OpenAI-compatible server without a tool parser: it then
    gets the fenced fallback).
    """
    use_native = supports_native_tools(model) if native is None else native
    if use_native:
        return model.bind_tools(tools, tool_choice=tool_choice, **kwargs)
    if supports_structured_output(model):
        return with_schema_tools(model, tools, tool_choice=tool_choice)
    return with_fenced_tools(model, tools, tool_choice=tool_choice)


def supports_structured_output(model: Any) -> bool:
    """Whether ``model`` constrains its decoding to a ``response_format`` JSON schema (its class says so)."""
    inner = model.inner if isinstance(model, FencedToolModel) else model
    return bool(getattr(type(inner), "structured_output", False))
