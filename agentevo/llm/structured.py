"""Structured answers: one request shape for every backbone, and one way to check what comes back.

A caller asks for structure the way OpenAI's API does: ``response_format={"type": "json_schema", "json_schema":
{"name", "schema", "strict"}}`` passed to ``invoke`` (or in a gateway request body). Each backbone honours it
with its engine's own means: ``llamacpp`` and ``vllm`` get the field as is (llama-server turns the schema into a
grammar; vLLM into its structured-output decoding), ``openai`` sends it to the API, ``local`` constrains
transformers' generation with lm-format-enforcer (:mod:`agentevo.llm.local_constrain`). Where decoding is
constrained, the answer parses unless it ran out of tokens.

:func:`ask_structured` is the one caller-side path: ask with the schema, validate with the pydantic model,
ask once more when it fails (with the validation error; a loop is asked afresh, sampled),
then raise :class:`StructuredOutputError` whose ``reason`` (:class:`StructuredFailure`) is recorded by the
caller. Bounds: :func:`token_budget` gives each schema a ``max_tokens`` from its own limits (``maxLength``,
``maxItems``), and :func:`repetitive` recognises a degenerate loop, so a small model that repeats itself is
cut off and named instead of spending a whole budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)
ResponseFormat = dict[str, Any]

DEFAULT_STRING_CHARS = 400  # a string with no maxLength is budgeted as this many characters
DEFAULT_ITEMS = 4  # an array with no maxItems is budgeted as this many items
CHARS_PER_TOKEN = 3  # English text and code in SmolLM2's tokenizer: about 3-4 characters a token
MAX_BUDGET = 2048  # no schema gets more tokens than this, whatever its bounds say
# A tail that repeats a unit of REPEAT_MIN_CHARS..REPEAT_MAX_PERIOD characters REPEAT_TIMES times in a row.
REPEAT_MIN_CHARS, REPEAT_MAX_PERIOD, REPEAT_TIMES = 48, 200, 4
REPAIR_TEMPERATURE = 0.7  # the retry of an answer that looped is sampled at this temperature


class StructuredFailure(StrEnum):
    """Why a structured answer could not be had; the value is what callers record."""

    refused = "schema_refused"  # the backbone refused the request or the schema (a 4xx naming it)
    truncated = "truncated"  # the answer ran out of max_tokens before the JSON closed
    repetition = "repetition"  # the answer was cut off repeating itself
    invalid_json = "invalid_json"  # the answer is not JSON at all
    schema_mismatch = "schema_mismatch"  # it is JSON, but not what the schema asks for


class SchemaUnsupported(ValueError):
    """The backbone cannot constrain its answer to this schema; the message names the construct."""


class StructuredOutputError(RuntimeError):
    """The backbone gave no valid answer for the schema, after one repair; ``reason`` names why."""

    def __init__(self, reason: StructuredFailure, detail: str, text: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason, self.detail, self.text = reason, detail, text


def response_format(schema: type[BaseModel] | dict[str, Any], name: str | None = None) -> ResponseFormat:
    """The OpenAI request field that asks for JSON matching ``schema`` (a pydantic model or a JSON schema)."""
    if isinstance(schema, type):
        name, schema = name or schema.__name__, schema.model_json_schema()
    schema = closed(schema)
    return {
        "type": "json_schema",
        "json_schema": {"name": name or "answer", "schema": schema, "strict": True},
    }


def closed(node: Any) -> Any:
    """``node`` (a JSON schema) with ``additionalProperties: false`` on every object that lists its properties:
    strict mode in OpenAI's API requires it, and a grammar engine would otherwise allow any extra key."""
    if isinstance(node, list):
        return [closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: closed(v) for k, v in node.items()}
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def requested_schema(fmt: Any) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (``json_object`` asks for any object), or None."""
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def token_budget(schema: dict[str, Any]) -> int:
    """Tokens enough for the largest answer ``schema`` allows (its maxLength / maxItems / enums), capped."""
    defs = schema.get("$defs") or schema.get("definitions") or {}
    chars = _chars(schema, defs, depth=0)
    return max(16, min(MAX_BUDGET, chars // CHARS_PER_TOKEN + 8))


def _chars(node: Any, defs: dict[str, Any], depth: int) -> int:
    """The most characters a JSON value of ``node`` takes (a rough, generous bound)."""
    if not isinstance(node, dict) or depth > 8:
        return DEFAULT_STRING_CHARS
    if "$ref" in node:
        return _chars(defs.get(node["$ref"].rsplit("/", 1)[-1]), defs, depth + 1)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        return max(_chars(o, defs, depth + 1) for o in options)
    if "enum" in node or "const" in node:
        return max(len(json.dumps(v)) for v in node.get("enum", [node.get("const")]))
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties") or {}
        return 2 + sum(len(k) + 4 + _chars(v, defs, depth + 1) for k, v in props.items())
    if kind == "array":
        return 2 + int(node.get("maxItems", DEFAULT_ITEMS)) * (2 + _chars(node.get("items"), defs, depth + 1))
    if kind == "string":
        return 2 + int(node.get("maxLength", DEFAULT_STRING_CHARS)) * 6 // 5  # escapes
    return 24  # numbers, booleans, null


def repetitive(text: str) -> bool:
    """Whether ``text`` ends in a loop: one unit repeated ``REPEAT_TIMES`` times, spanning at least
    ``REPEAT_MIN_CHARS`` characters (what a small model does when it has nothing more to say)."""
    for period in range(1, REPEAT_MAX_PERIOD + 1):
        span = period * REPEAT_TIMES
        if span > len(text):
            return False
        if span < REPEAT_MIN_CHARS:
            continue
        unit = text[-period:]
        if text[-span:] == unit * REPEAT_TIMES:
            return True
    return False


def failure_of(text: str, finish_reason: str | None) -> tuple[StructuredFailure, str] | None:
    """Why ``text`` is no usable JSON value (None when it is): cut off repeating, cut off, malformed, or a
    string in it that loops (a grammar closes a string at its maxLength, so the loop parses)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        if repetitive(text):
            return StructuredFailure.repetition, "the answer repeated itself until it was cut off"
        if finish_reason == "length":
            return StructuredFailure.truncated, f"the answer ran out of tokens ({exc})"
        return StructuredFailure.invalid_json, str(exc)
    if any(repetitive(s) for s in _strings(value)):
        return StructuredFailure.repetition, "a string in the answer repeats itself"
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for item in items for s in _strings(item)]


def parse_as(model: type[T], message: AIMessage) -> T:
    """``message``'s text as a ``model``; StructuredOutputError naming why it is not one."""
    text = message.content if isinstance(message.content, str) else str(message.content)
    failure = failure_of(text, (message.response_metadata or {}).get("finish_reason"))
    if failure:
        raise StructuredOutputError(*failure, text=text)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise StructuredOutputError(StructuredFailure.schema_mismatch, errors[:600], text=text) from None


Invoke = Callable[..., AIMessage]  # a chat model's (or a client's) invoke: (messages, **options) -> AIMessage


def ask_structured(
    invoke: Invoke,
    messages: Sequence[BaseMessage],
    model: type[T],
    *,
    schema: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> T:
    """Ask for a ``model`` through ``invoke``, with its schema and a budget fitted to it; repair once.

    ``schema`` replaces the model's own JSON schema in the request when the caller can say more than the model's
    types do (enums of the files and lines that exist); the answer is still validated as a ``model``. A refusal
    of the schema (SchemaUnsupported, a 400) is the named failure ``schema_refused``, not repaired: asking again
    the same way will not help. An answer that fails to parse or validate is shown back with the error, once.
    ``temperature`` (None: the backbone's) is for callers that ask the same question more than once.
    """
    fmt = response_format(schema or model, name=model.__name__)
    options = {"response_format": fmt, "max_tokens": max_tokens or token_budget(requested_schema(fmt) or {})}
    if temperature is not None:
        options["temperature"] = temperature
    reply = _reply(invoke, list(messages), options)
    try:
        return parse_as(model, reply)
    except StructuredOutputError as first:
        again, again_options = repair(messages, reply, first, options)
        try:
            return parse_as(model, _reply(invoke, again, again_options))
        except StructuredOutputError as second:
            raise StructuredOutputError(
                second.reason, f"{second.detail} (after one repair of: {first})", second.text
            ) from None


def _reply(invoke: Invoke, messages: list[BaseMessage], options: dict[str, Any]) -> AIMessage:
    """One structured call; a refusal of the schema as StructuredOutputError, a cut-off answer as a reply.

    ``ChatOpenAI`` raises for an answer that ran out of tokens (``LengthFinishReasonError``): it is turned back
    into the reply it was, so that it gets its repair like any other.
    """
    try:
        return invoke(messages, **options)
    except SchemaUnsupported as exc:
        raise StructuredOutputError(StructuredFailure.refused, str(exc)) from None
    except openai.LengthFinishReasonError as exc:
        return cut_off_reply(exc)
    except openai.BadRequestError as exc:
        raise StructuredOutputError(StructuredFailure.refused, str(exc)) from None


def repair(
    messages: Sequence[BaseMessage], reply: AIMessage, error: StructuredOutputError, options: dict[str, Any]
) -> tuple[list[BaseMessage], dict[str, Any]]:
    """The second request after ``error``. A loop is greedy decoding's own failure, and a looped answer shown back
    primes the same loop: the question is asked afresh, sampled (``REPAIR_TEMPERATURE``). Any other failure is
    shown back to the model with the error."""
    if error.reason is StructuredFailure.repetition:
        return list(messages), {**options, "temperature": REPAIR_TEMPERATURE}
    return [*messages, reply, HumanMessage(repair_prompt(error))], options


def repair_prompt(error: StructuredOutputError) -> str:
    """What the model is told after an answer that did not fit the schema."""
    return (
        f"Your answer was not valid ({error}). Answer again with one JSON object that follows the schema "
        "exactly, and nothing else."
    )


def cut_off_reply(exc: openai.LengthFinishReasonError) -> AIMessage:
    """The answer the OpenAI SDK raised as cut off (its parse path for a ``response_format`` does) as the reply it
    was, with its usage, so that it is named ``truncated`` like any other backbone's."""
    completion = exc.completion
    usage = completion.usage
    counts = usage and {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    return AIMessage(
        content=completion.choices[0].message.content or "",
        response_metadata={"finish_reason": "length", "model_name": completion.model},
        usage_metadata=counts or None,
    )
