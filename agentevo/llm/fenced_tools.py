"""Tool calling in plain text, for chat models that have no native tool calling (the embedded model).

The model is told, in its system prompt, which tools exist and to answer with exactly one fenced block::

    ```action
    {"tool": "add", "args": {"a": 2, "b": 3}}
    ```

Its reply is parsed back into ``AIMessage(tool_calls=[...])``, so LangGraph's ``ToolNode`` and agent loops work
unchanged. Earlier tool calls and ``ToolMessage`` results in the history are rewritten as plain text the model
can read (it has no ``tool`` role). A reply with a broken action block comes back as plain text with
``response_metadata["fenced_action_error"]`` saying what was wrong, so an agent loop can tell the model.

The pieces are pure functions (:func:`render_tools_prompt`, :func:`parse_action`, :func:`messages_to_plain`)
and testable without a model; :class:`FencedToolModel` / :func:`with_fenced_tools` wrap any ``BaseChatModel``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, field_validator

ACTION_LANG = "action"
# Fence languages accepted besides ``action`` when the block holds a tool call (small models drift).
TOLERATED_LANGS = ("json", "tool", "tool_call", "tool_code")
ERROR_KEY = "fenced_action_error"

# ```lang\n body \n``` ; the closing fence may be missing when generation stopped inside the block.
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_\-]*)[^\n]*\n(.*?)(```|\Z)", re.DOTALL)
# Where a reply that holds a complete action block can stop (see FencedToolModel: no need to generate more).
ACTION_END_PATTERN = r"```[ \t]*action[^\n]*\n.*?```"
# An unfenced {"tool": ...} object (small models sometimes drop the fence).
_BARE_ACTION = re.compile(r'\{\s*"(?:tool|name)"\s*:')


class ActionParseError(ValueError):
    """The reply holds an action block that cannot be turned into a tool call."""


# --------------------------------------------------------------------------------------------------- tools


def tool_specs(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI-style function specs (``name``, ``description``, ``parameters``) for tools of any accepted form."""
    specs = []
    for tool in tools:
        spec = convert_to_openai_tool(tool)
        function = spec.get("function", spec)
        specs.append(
            {
                "name": function["name"],
                "description": (function.get("description") or "").strip(),
                "parameters": function.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    names = [s["name"] for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two tools share the name(s) {', '.join(duplicates)}")
    return specs


_EXAMPLE_VALUES = {"integer": 1, "number": 1.5, "string": "text", "boolean": True, "array": [], "object": {}}


def example_args(parameters: dict[str, Any]) -> dict[str, Any]:
    """Placeholder arguments that fit a JSON schema's required properties (for the prompt's example)."""
    props = parameters.get("properties") or {}
    required = parameters.get("required") or list(props)
    out = {}
    for name in required:
        kind = (props.get(name) or {}).get("type", "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        out[name] = _EXAMPLE_VALUES.get(kind, "text")
    return out


def render_action(name: str, args: dict[str, Any]) -> str:
    """The canonical fenced action block for one tool call."""
    return f"```{ACTION_LANG}\n{json.dumps({'tool': name, 'args': args}, ensure_ascii=False)}\n```"


def render_tool_list(specs: Sequence[dict[str, Any]]) -> list[str]:
    """The lines that list the tools: a signature each, and the schema where the signature says too little."""
    lines = ["You can use these tools:"]
    for spec in specs:
        params = _compact_schema(spec["parameters"])
        lines.append(f"- {_signature(spec['name'], params)}: {spec['description'] or '(no description)'}")
        if not _is_simple(params):
            lines.append(f"  arguments (JSON schema): {json.dumps(params, ensure_ascii=False)}")
    return lines


def render_tools_prompt(tools: Sequence[Any], *, tool_choice: str | None = None) -> str:
    """The system-prompt section that lists the tools and the action-block format.

    Each tool gets a signature line (``name(arg: type, ...): description``) built from its JSON schema; the full
    schema follows only when it says more than names and primitive types (descriptions, enums, nested objects),
    because a 135M model copies what it sees and does worse with schemas it does not need. The format is shown
    with a concrete example call rather than placeholders (small models copy placeholders verbatim).
    """
    specs = tool_specs(tools)
    lines = render_tool_list(specs)
    example: dict[str, Any] = specs[0] if specs else {"name": "tool_name", "parameters": {}}
    lines += [
        "",
        "To use a tool, reply with one block like this and nothing else:",
        render_action(example["name"], example_args(example["parameters"])),
        'Put the tool name in "tool" and the values from the request in "args" (a JSON object).',
        "When a tool result arrives, use it. When you have the answer, reply in plain text with no action block.",
    ]
    if tool_choice and tool_choice not in ("auto", "none"):
        forced = tool_choice if tool_choice in {s["name"] for s in specs} else None
        lines.append(f"You must call the tool {forced} now." if forced else "You must call a tool now.")
    return "\n".join(lines)


_PRIMITIVES = {"integer", "number", "string", "boolean"}


def _type_name(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind:
        return str(kind)
    if "anyOf" in prop:
        return " | ".join(_type_name(p) for p in prop["anyOf"])
    return "any"


def _signature(name: str, parameters: dict[str, Any]) -> str:
    props = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    args = [
        f"{arg}: {_type_name(prop)}" + ("" if arg in required else " (optional)")
        for arg, prop in props.items()
    ]
    return f"{name}({', '.join(args)})"


def _is_simple(parameters: dict[str, Any]) -> bool:
    """True when the signature line already says everything the schema says."""
    for prop in (parameters.get("properties") or {}).values():
        if set(prop) - {"type"} or prop.get("type") not in _PRIMITIVES:
            return False
    return True


def _compact_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """The schema without noise a small model does not need (titles)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(parameters)


# --------------------------------------------------------------------------------------------------- parsing


@dataclass
class ParsedReply:
    """What :func:`parse_action` found in a reply."""

    text: str  # the reply without the action block (the model's reasoning), or the whole reply
    tool_call: dict[str, Any] | None = None  # {"name", "args", "id", "type": "tool_call"}
    error: str | None = None  # why an action block could not be used
    ignored_blocks: int = 0  # further action blocks after the one used
    notes: list[str] = field(default_factory=list)


def _blocks(text: str) -> list[tuple[str, str, int, int, bool]]:
    """(language, body, start, end, closed) of each fenced block."""
    return [
        (m.group(1).lower(), m.group(2), m.start(), m.end(), bool(m.group(3))) for m in _FENCE.finditer(text)
    ]


def _looks_like_action(obj: Any) -> bool:
    return isinstance(obj, dict) and (
        "tool" in obj or ("name" in obj and ("args" in obj or "arguments" in obj))
    )


def _first_json(body: str) -> Any:
    """The first JSON value in ``body``; text after it is tolerated."""
    body = body.strip()
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ActionParseError("the action block holds no JSON object")
    try:
        value, _ = json.JSONDecoder().raw_decode(body[start:])
    except json.JSONDecodeError as exc:
        raise ActionParseError(
            f"the action block is not valid JSON ({exc.msg} at character {exc.pos})"
        ) from None
    return value


def to_call(obj: Any, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A tool call from an action object (``{"tool": name, "args": {...}}``); ActionParseError says what is wrong."""
    if not isinstance(obj, dict):
        raise ActionParseError(
            f'the action must be a JSON object like {{"tool": ..., "args": {{...}}}}, not {type(obj).__name__}'
        )
    name = obj.get("tool", obj.get("name"))
    if not isinstance(name, str) or not name:
        raise ActionParseError('the action has no "tool" name')
    if name not in specs:
        known = ", ".join(sorted(specs)) or "(none)"
        raise ActionParseError(f"unknown tool {name!r}; the tools are: {known}")
    args = obj.get("args", obj.get("arguments", obj.get("parameters", {})))
    if isinstance(args, str):  # {"args": "{\"a\": 1}"}
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            raise ActionParseError(
                f'"args" of {name} must be a JSON object, got the string {args!r}'
            ) from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ActionParseError(f'"args" of {name} must be a JSON object, got {type(args).__name__}')
    params = specs[name]["parameters"]
    missing = [p for p in params.get("required") or [] if p not in args]
    if missing:
        raise ActionParseError(f"{name} is missing required argument(s): {', '.join(missing)}")
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:16]}", "type": "tool_call"}


def parse_action(text: str, tools: Sequence[Any]) -> ParsedReply:
    """Find the first action block in ``text`` and turn it into a tool call.

    Rules: the first ```` ```action ```` block wins (a ```` ```json ```` or similar block counts when it holds an
    object with a ``"tool"`` key); later action blocks are ignored and counted; text around the block is
    kept as the message text; a missing closing fence is tolerated; with no fence at all, a reply that *is*
    a ``{"tool": ...}`` object in the text is accepted. No action block means a plain answer (no error). A block
    that cannot be used (bad JSON, unknown tool, args not an object, a required argument missing) gives
    ``error`` and no tool call.
    """
    specs = {s["name"]: s for s in tool_specs(tools)}
    candidates = []
    for lang, body, start, end, closed in _blocks(text):
        if lang == ACTION_LANG:
            candidates.append((body, start, end, closed))
        elif lang in TOLERATED_LANGS or lang == "":
            try:
                obj = _first_json(body)
            except ActionParseError:
                continue
            if _looks_like_action(obj):
                candidates.append((body, start, end, closed))
    if not candidates:
        bare = _BARE_ACTION.search(text)
        if bare:
            try:
                obj, end = json.JSONDecoder().raw_decode(text, bare.start())
            except json.JSONDecodeError:
                obj = None
            if _looks_like_action(obj):
                rest = (text[: bare.start()].rstrip() + "\n" + text[end:].lstrip()).strip()
                try:
                    return ParsedReply(text=rest, tool_call=to_call(obj, specs), notes=["unfenced action"])
                except ActionParseError as exc:
                    return ParsedReply(text=text, error=str(exc))
        return ParsedReply(text=text)
    body, start, end, closed = candidates[0]
    rest = (text[:start].rstrip() + "\n" + text[end:].lstrip()).strip()
    try:
        call = to_call(_first_json(body), specs)
    except ActionParseError as exc:
        error = str(exc)
        if not closed:
            error += " (the block has no closing ```: the reply may have been cut off)"
        return ParsedReply(text=text, error=error, ignored_blocks=len(candidates) - 1)
    return ParsedReply(text=rest, tool_call=call, ignored_blocks=len(candidates) - 1)


def reply_to_message(reply: AIMessage, tools: Sequence[Any]) -> AIMessage:
    """The model's raw reply as an ``AIMessage`` with ``tool_calls`` (or with ``fenced_action_error``)."""
    text = reply.content if isinstance(reply.content, str) else _text_of(reply)
    parsed = parse_action(text, tools)
    metadata = dict(reply.response_metadata or {})
    if parsed.ignored_blocks:
        metadata["fenced_action_ignored_blocks"] = parsed.ignored_blocks
    if parsed.error:
        metadata[ERROR_KEY] = parsed.error
    if parsed.tool_call:
        metadata["raw_text"] = text
    common = {"response_metadata": metadata, "usage_metadata": reply.usage_metadata, "id": reply.id}
    if parsed.tool_call:
        return AIMessage(content=parsed.text, tool_calls=[parsed.tool_call], **common)
    return AIMessage(content=text, **common)


# --------------------------------------------------------------------------------------------------- history


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def messages_to_plain(
    messages: Sequence[BaseMessage], render_call: Callable[[str, dict[str, Any]], str] = render_action
) -> list[BaseMessage]:
    """Rewrite tool calls and tool results as plain text, for a model without tool roles.

    An ``AIMessage`` with ``tool_calls`` becomes its text plus each call as ``render_call`` writes it (an action
    block by default); a ``ToolMessage`` becomes a user message ``Tool result (name): ...``. Other messages pass
    through (content as text).
    """
    names: dict[str, str] = {}
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage):
            text = _text_of(message).strip()
            blocks = []
            for call in message.tool_calls or []:
                names[call.get("id") or ""] = call["name"]
                blocks.append(render_call(call["name"], call.get("args") or {}))
            body = "\n".join([text] + blocks if text else blocks) if blocks else text
            out.append(AIMessage(content=body))
        elif isinstance(message, ToolMessage):
            name = message.name or names.get(message.tool_call_id, "tool")
            status = " (error)" if getattr(message, "status", "success") == "error" else ""
            out.append(HumanMessage(content=f"Tool result ({name}){status}:\n{_text_of(message)}"))
        elif isinstance(message, SystemMessage | HumanMessage):
            content = message.content if isinstance(message.content, str) else _text_of(message)
            out.append(message.__class__(content=content))
        else:  # ChatMessage, FunctionMessage, ...: keep the text under a user turn
            out.append(HumanMessage(content=_text_of(message)))
    return out


def with_tools_prompt(messages: Sequence[BaseMessage], prompt: str) -> list[BaseMessage]:
    """Put the tools section into the first system message (or a new one in front)."""
    messages = list(messages)
    if messages and isinstance(messages[0], SystemMessage):
        first = _text_of(messages[0]).rstrip()
        return [SystemMessage(content=f"{first}\n\n{prompt}" if first else prompt), *messages[1:]]
    return [SystemMessage(content=prompt), *messages]


# --------------------------------------------------------------------------------------------------- wrapper


def normalise_tool_choice(value: Any) -> str | None:
    """LangChain's tool_choice forms -> None/"auto"/"none", "any" (some tool) or a tool name."""
    if value is None or value is False:
        return None
    if value is True or value == "required":
        return "any"
    if isinstance(value, dict):  # {"type": "function", "function": {"name": ...}} or {"name": ...}
        return (value.get("function") or value).get("name") or "any"
    return str(value)


class FencedToolModel(BaseChatModel):
    """Any chat model plus tool calling through fenced action blocks in plain text.

    ``invoke`` sends the history (tool turns rewritten as text, tools listed in the system prompt) to ``inner``
    and returns an ``AIMessage`` whose ``tool_calls`` come from the reply's action block.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    tools: list[Any] = Field(default_factory=list)
    tool_choice: str | None = None

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _normalise_choice(cls, value: Any) -> str | None:
        return normalise_tool_choice(value)

    @property
    def _llm_type(self) -> str:
        return f"fenced-tools({self.inner._llm_type})"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"inner": self.inner._llm_type, "tools": [s["name"] for s in tool_specs(self.tools)]}

    def _prepare(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        plain = messages_to_plain(messages)
        if not self.tools or self.tool_choice == "none":
            return plain
        return with_tools_prompt(plain, render_tools_prompt(self.tools, tool_choice=self.tool_choice))

    def _call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Stop right after a complete action block when the inner model can (saves the ramble after it).
        if self.tools and self.tool_choice != "none" and getattr(self.inner, "supports_stop_after", False):
            kwargs = {**kwargs, "stop_after": [*(kwargs.get("stop_after") or []), ACTION_END_PATTERN]}
        return kwargs

    def _finish(self, reply: BaseMessage) -> ChatResult:
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=_text_of(reply))
        parse = self.tools and self.tool_choice != "none"
        message = reply_to_message(reply, self.tools) if parse else reply
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # The outer run reports this call to callbacks; the inner call runs without them (no double count).
        reply = self.inner.invoke(self._prepare(messages), stop=stop, **self._call_kwargs(kwargs))
        return self._finish(reply)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        reply = await self.inner.ainvoke(self._prepare(messages), stop=stop, **self._call_kwargs(kwargs))
        return self._finish(reply)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Any | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        tool_specs(tools)  # fail early on tools that cannot be described
        return FencedToolModel(inner=self.inner, tools=list(tools), tool_choice=tool_choice)


def with_fenced_tools(
    model: BaseChatModel, tools: Sequence[Any], *, tool_choice: str | None = None
) -> FencedToolModel:
    """Wrap ``model`` so that it calls ``tools`` through fenced action blocks."""
    if isinstance(model, FencedToolModel):
        model = model.inner
    tool_specs(tools)
    return FencedToolModel(inner=model, tools=list(tools), tool_choice=tool_choice)
