"""Tool calling by constrained decoding, for backbones that honour a JSON schema but parse no tool calls.

The reply is held to one JSON object: ``{"tool": <one of the bound tools>, "args": <that tool's arguments>}``
or ``{"answer": "..."}`` (the final answer; left out when ``tool_choice`` demands a tool). The schema is a union
with one branch per tool, so the decoder cannot emit an unknown tool name, a missing required argument or an
argument of the wrong type; strings get a ``maxLength`` and the call a ``max_tokens`` fitted to the schema.
``llamacpp``, ``vllm`` and ``local`` use it; the fenced-action parser (:mod:`agentevo.llm.fenced_tools`)
stays for chat models that can only produce text.

The reply comes back as an ``AIMessage`` with ``tool_calls`` (or the answer as its text), so LangGraph's
``ToolNode`` and ``create_react_agent`` work unchanged; an answer the backbone still got wrong (cut off,
repeating) comes back as text with ``fenced_action_error`` and ``structured_failure`` in its metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from agentevo.llm.fenced_tools import (
    ERROR_KEY,
    ActionParseError,
    FencedToolModel,
    messages_to_plain,
    render_tool_list,
    to_call,
    tool_specs,
    with_tools_prompt,
)
from agentevo.llm.structured import (
    StructuredFailure,
    cut_off_reply,
    failure_of,
    response_format,
    token_budget,
)

ANSWER_KEY = "answer"
FAILURE_KEY = "structured_failure"
ANSWER_CHARS = 1000  # the longest final answer
ARG_CHARS = 2000  # the longest string argument whose tool gives none (a whole small file for `create`)


def bounded(node: Any, chars: int = ARG_CHARS) -> Any:
    """``node`` (a JSON schema) with a maxLength on every free string and no titles."""
    if isinstance(node, list):
        return [bounded(n, chars) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: bounded(v, chars) for k, v in node.items() if k != "title"}
    if out.get("type") == "string" and "enum" not in out and "maxLength" not in out:
        out["maxLength"] = chars
    return out


def _branch(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _forced(specs: Sequence[dict[str, Any]], tool_choice: str | None) -> str | None:
    """What ``tool_choice`` demands: ``any`` tool, one tool's name, or nothing (None: the model may answer)."""
    if tool_choice == "any" or tool_choice in {s["name"] for s in specs}:
        return tool_choice
    return None


def tool_call_schema(specs: Sequence[dict[str, Any]], tool_choice: str | None = None) -> dict[str, Any]:
    """The JSON schema of one reply: a call of a bound tool (one branch per tool) or, unless ``tool_choice``
    demands a tool (``any`` or a tool's name), a final answer."""
    forced = _forced(specs, tool_choice)
    branches = [
        _branch({"tool": {"enum": [s["name"]]}, "args": bounded(s["parameters"])})
        for s in specs
        if forced in (None, "any", s["name"])
    ]
    if forced is None or not branches:
        branches.append(_branch({ANSWER_KEY: {"type": "string", "maxLength": ANSWER_CHARS}}))
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def render_call_json(name: str, args: dict[str, Any]) -> str:
    """A tool call in the history as the model itself writes one."""
    return json.dumps({"tool": name, "args": args}, ensure_ascii=False)


def render_schema_tools_prompt(specs: Sequence[dict[str, Any]], tool_choice: str | None = None) -> str:
    """The system-prompt section: the tools, and the two JSON replies. No example call: the decoder enforces the
    format, and a small model copies an example's placeholder values instead of the request's."""
    lines = [
        *render_tool_list(specs),
        "",
        'To use a tool, reply with one JSON object: {"tool": <its name>, "args": {<its arguments>}}.',
        "Take the argument values from the request.",
    ]
    forced = _forced(specs, tool_choice)
    if forced is None:
        lines.append(
            f'When a tool result gives you the final answer, reply {{"{ANSWER_KEY}": "<the answer>"}}.'
        )
    else:
        lines.append(
            "You must call a tool now." if forced == "any" else f"You must call the tool {forced} now."
        )
    return "\n".join(lines)


def reply_to_call(reply: AIMessage, specs: Sequence[dict[str, Any]]) -> AIMessage:
    """The constrained reply as an ``AIMessage``: a tool call, the answer's text, or the text with the failure."""
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    metadata = {**(reply.response_metadata or {}), "raw_text": text}
    common = {"usage_metadata": reply.usage_metadata, "id": reply.id}
    failure = failure_of(text, metadata.get("finish_reason"))
    if failure is None:
        obj = json.loads(text)
        if isinstance(obj, dict) and set(obj) == {ANSWER_KEY}:
            return AIMessage(content=str(obj[ANSWER_KEY]), response_metadata=metadata, **common)
        try:
            call = to_call(obj, {s["name"]: s for s in specs})
            return AIMessage(content="", tool_calls=[call], response_metadata=metadata, **common)
        except ActionParseError as exc:
            failure = (StructuredFailure.schema_mismatch, str(exc))
    reason, detail = failure
    metadata |= {ERROR_KEY: f"{reason}: {detail}", FAILURE_KEY: reason.value}
    return AIMessage(content=text, response_metadata=metadata, **common)


class SchemaToolModel(FencedToolModel):
    """Any chat model that honours ``response_format``, plus tool calling held to the tools' schemas."""

    @property
    def _llm_type(self) -> str:
        return f"schema-tools({self.inner._llm_type})"

    def _constrained(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def _prepare(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        plain = messages_to_plain(messages, render_call_json)
        if not self._constrained():
            return plain
        return with_tools_prompt(plain, render_schema_tools_prompt(tool_specs(self.tools), self.tool_choice))

    def _call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self._constrained():
            return kwargs
        schema = tool_call_schema(tool_specs(self.tools), self.tool_choice)
        limits = [kwargs.get("max_tokens"), getattr(self.inner, "max_tokens", None), token_budget(schema)]
        budget = min(int(n) for n in limits if n)
        return {**kwargs, "response_format": response_format(schema, "tool_call"), "max_tokens": budget}

    def _generate(
        self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any
    ) -> ChatResult:
        try:
            return super()._generate(messages, stop, run_manager, **kwargs)
        except openai.LengthFinishReasonError as exc:  # ChatOpenAI raises a cut-off structured answer
            return self._finish(cut_off_reply(exc))

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        except openai.LengthFinishReasonError as exc:
            return self._finish(cut_off_reply(exc))

    def _finish(self, reply: BaseMessage) -> ChatResult:
        if not isinstance(reply, AIMessage) or not self._constrained():
            return super()._finish(reply)
        message = reply_to_call(reply, tool_specs(self.tools))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return with_schema_tools(self.inner, tools, tool_choice=tool_choice)


def with_schema_tools(
    model: BaseChatModel, tools: Sequence[Any], *, tool_choice: str | None = None
) -> SchemaToolModel:
    """Wrap ``model`` (which must honour ``response_format``) so that it calls ``tools`` through a schema."""
    if isinstance(model, FencedToolModel):
        model = model.inner
    tool_specs(tools)  # fail early on tools that cannot be described
    return SchemaToolModel(inner=model, tools=list(tools), tool_choice=tool_choice)
