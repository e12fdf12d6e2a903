"""The ``local`` backbone with the REAL embedded model (SmolLM2-135M-Instruct, converted once into the cache).

`make test` runs `agentevo model fetch` first; without it the first test here fetches and converts (~1 min).
Only ``test_scripted_*`` use a scripted chat model, and say so.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import Field

from agentevo.llm.backbone import BackboneSetupError, bind_tools_any, make_chat_model, supports_native_tools
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LLMConfig
from agentevo.llm.fenced_tools import ERROR_KEY, FencedToolModel, with_fenced_tools
from agentevo.llm.local import LocalChatModel, LocalModelError, load_local_model
from agentevo.llm.schema_tools import SchemaToolModel


@tool
def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


@pytest.fixture(scope="session")
def model(model_dir) -> LocalChatModel:
    chat = LocalChatModel(model_dir=model_dir, max_tokens=32)
    chat.load()
    return chat


# ------------------------------------------------------------------------------------------------ chat


def test_chat_returns_text_and_usage(model):
    reply = model.invoke("What is the capital of France? Answer in one sentence.")
    assert isinstance(reply, AIMessage)
    assert reply.content.strip()
    usage = reply.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert reply.response_metadata["model_name"] == EMBEDDED_MODEL_NAME
    assert reply.response_metadata["finish_reason"] in ("stop", "length")
    assert model._llm_type == "agentevo-local"


def test_weights_load_once_per_process(model, model_dir):
    assert load_local_model(model_dir) is model.load()
    assert LocalChatModel(model_dir=model_dir).load() is model.load()


def test_max_tokens_is_honoured(model):
    reply = model.invoke("Write a long story about a dragon.", max_tokens=5)
    assert reply.usage_metadata["output_tokens"] == 5
    assert reply.response_metadata["finish_reason"] == "length"


def test_greedy_is_deterministic_and_stop_sequences_cut_the_reply(model):
    prompt = [
        SystemMessage(content="You are a helpful assistant."),
        HumanMessage(content="Count from 1 to 10."),
    ]
    full = model.invoke(prompt, max_tokens=24)
    assert model.invoke(prompt, max_tokens=24).content == full.content  # greedy: same input, same output
    text = full.content
    # A stop string from the middle of the reply: everything before its first occurrence comes back.
    words = text.split()
    stop = next(w for w in words[len(words) // 2 :] if text.find(w) > len(text) // 3)
    cut = model.invoke(prompt, max_tokens=24, stop=[stop])
    assert cut.content == text[: text.find(stop)]
    assert stop not in cut.content
    assert cut.response_metadata["finish_reason"] == "stop"
    assert cut.usage_metadata["output_tokens"] < full.usage_metadata["output_tokens"]
    # stop given on the model itself behaves the same
    assert (
        LocalChatModel(model_dir=model.model_dir, stop=[stop]).invoke(prompt, max_tokens=24).content
        == cut.content
    )


def test_stop_after_keeps_the_match_and_ends_there(model):
    # What ends a fenced action block at its closing fence with this backbone (the round trip of a tool call
    # through that block is tested on the llama.cpp backbone, which shares the fenced tools).
    full = model.invoke("Count from 1 to 10.", max_tokens=24).content
    cut = model.invoke("Count from 1 to 10.", max_tokens=24, stop_after=[r"\d"])
    first = re.search(r"\d", full)
    assert first is not None, full
    assert cut.content == full[: first.end()] and cut.response_metadata["finish_reason"] == "stop"


def test_async_and_concurrent_calls(model):
    reply = asyncio.run(model.ainvoke("Say hello.", max_tokens=4))
    assert reply.usage_metadata["output_tokens"] > 0
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(model.invoke("Say hi.", max_tokens=3)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and all(r.usage_metadata["output_tokens"] > 0 for r in results)


def test_sampling_with_a_seed_is_reproducible(model):
    a = model.invoke("Name a fruit.", temperature=0.9, seed=7, max_tokens=8)
    b = model.invoke("Name a fruit.", temperature=0.9, seed=7, max_tokens=8)
    assert a.content == b.content and a.content.strip()


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(LocalModelError, match="agentevo model fetch"):
        LocalChatModel(model_dir=tmp_path / "nothing").invoke("hi")


# ------------------------------------------------------------------------------------------------ tools


# ------------------------------------------------------------------------------------------------ scripted


class ScriptedChatModel(BaseChatModel):
    """A scripted chat model: returns the given replies in order and records every prompt it received."""

    replies: list[str]
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.prompts.append(list(messages))
        text = self.replies[len(self.prompts) - 1]
        usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])


def run_agent_loop(model, question: str, tools, max_steps: int = 4) -> tuple[AIMessage, list[BaseMessage]]:
    """A minimal agent loop (what a LangGraph ReAct graph does), bounded to ``max_steps`` model calls."""
    by_name = {t.name: t for t in tools}
    history: list[BaseMessage] = [HumanMessage(content=question)]
    for _ in range(max_steps):
        reply = model.invoke(history)
        history.append(reply)
        if reply.tool_calls:
            history += [by_name[c["name"]].invoke(c) for c in reply.tool_calls]
        elif ERROR_KEY in reply.response_metadata:
            history.append(
                HumanMessage(
                    content=f"Your action block was not usable: {reply.response_metadata[ERROR_KEY]}"
                )
            )
        else:
            return reply, history
    raise AssertionError(f"no final answer within {max_steps} steps")


def test_scripted_model_drives_parse_tool_result_final_answer():
    """Scripted chat model (deterministic): a broken block, a valid call, then the final answer."""
    inner = ScriptedChatModel(
        replies=[
            '```action\n{"tool": "add", "args": {"a": 2, "b": }}\n```',
            'Let me add.\n```action\n{"tool": "add", "args": {"a": 2, "b": 3}}\n```',
            "The sum is 5.",
        ]
    )
    final, history = run_agent_loop(with_fenced_tools(inner, [add]), "What is 2 + 3?", [add])
    assert final.content == "The sum is 5." and not final.tool_calls
    assert [type(m).__name__ for m in history] == [
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert "not valid JSON" in history[1].response_metadata[ERROR_KEY]
    assert history[3].tool_calls[0]["args"] == {"a": 2, "b": 3} and history[3].content == "Let me add."
    assert history[4].content == "5"
    # Every prompt the inner model saw: tools in the system prompt, no tool roles, the result as text.
    for prompt in inner.prompts:
        assert isinstance(prompt[0], SystemMessage) and "add(a: integer, b: integer)" in prompt[0].content
        assert not any(isinstance(m, ToolMessage) or getattr(m, "tool_calls", None) for m in prompt)
    last = inner.prompts[-1]
    assert last[-2].content == 'Let me add.\n```action\n{"tool": "add", "args": {"a": 2, "b": 3}}\n```'
    assert last[-1].content == "Tool result (add):\n5"


# ------------------------------------------------------------------------------------------------ backbone


def test_make_chat_model_local(cache_dir, model_dir):
    chat = make_chat_model(LLMConfig(backbone="local", temperature=0.0, max_tokens=77), cache_dir)
    assert isinstance(chat, LocalChatModel)
    assert chat.model_dir == model_dir and chat.max_tokens == 77
    assert not supports_native_tools(chat)
    assert isinstance(bind_tools_any(chat, [add]), SchemaToolModel)  # held to the tools' schema


def test_make_chat_model_openai(monkeypatch, cache_dir):
    config = LLMConfig(
        backbone="openai", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="AGENTEVO_TEST_KEY"
    )
    monkeypatch.delenv("AGENTEVO_TEST_KEY", raising=False)
    with pytest.raises(
        BackboneSetupError, match=r"\$AGENTEVO_TEST_KEY is not set"
    ):  # remote: a key is needed
        make_chat_model(config.model_copy(update={"base_url": "https://models.invalid/v1"}), cache_dir)
    monkeypatch.setenv("AGENTEVO_TEST_KEY", "sk-test")
    chat = make_chat_model(config, cache_dir)
    assert isinstance(chat, ChatOpenAI)
    assert chat.openai_api_base == "http://127.0.0.1:9/v1" and chat.model_name == "m"
    assert chat.max_retries == config.max_retries and chat.request_timeout == config.timeout
    assert supports_native_tools(chat)
    bound = bind_tools_any(chat, [add])
    assert bound.kwargs["tools"][0]["function"]["name"] == "add"  # native tool calling
    assert isinstance(bind_tools_any(chat, [add], native=False), FencedToolModel)
