"""A scripted chat model: replies from a list, for testing control flow and measuring overhead.

It is not a backbone. Tests that use it say so; it lets a test drive an agent or the gateway
through a known sequence without a model's randomness or cost. Asked for structure (``response_format``), it
answers as a constrained backbone would: the first JSON object in its reply that has the schema's required keys
(the whole reply when none has, so a test can script an answer that ignores the schema).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from agentevo.llm.structured import requested_schema


class ScriptedChatModel(BaseChatModel):
    """Answers with ``replies`` in order (cycling), after ``delay`` seconds each.

    Usage is counted in whitespace-separated words, so token accounting can be checked.
    ``in_flight_peak`` records how many calls ever ran at once.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # Replies may carry tool calls themselves, so tools pass through untouched.
    native_tool_calling: ClassVar[bool] = True

    replies: Sequence[str | AIMessage]
    delay: float = 0.0
    model: str = "scripted"  # the model name its replies report
    in_flight_peak: int = 0
    _cycle: Iterator[str | AIMessage] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(0)

    def model_post_init(self, context: Any) -> None:
        self._cycle = itertools.cycle(self.replies)

    @property
    def _llm_type(self) -> str:
        return "agentevo-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            reply = next(self._cycle)
            self._in_flight += 1
            self.in_flight_peak = max(self.in_flight_peak, self._in_flight)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self._in_flight -= 1
        if isinstance(reply, str):
            reply = structured_part(reply, requested_schema(kwargs.get("response_format")))
        message = reply.model_copy() if isinstance(reply, AIMessage) else AIMessage(content=reply)
        prompt_words = sum(len(str(m.content).split()) for m in messages)
        reply_words = len(str(message.content).split())
        message.usage_metadata = {
            "input_tokens": prompt_words,
            "output_tokens": reply_words,
            "total_tokens": prompt_words + reply_words,
        }
        message.response_metadata = {"model_name": self.model, "finish_reason": "stop"}
        return ChatResult(generations=[ChatGeneration(message=message)])


def structured_part(text: str, schema: dict[str, Any] | None) -> str:
    """The first JSON object in ``text`` with ``schema``'s required keys (``text`` itself when none has, or when
    no schema was asked for)."""
    if schema is None:
        return text
    required = set(schema.get("required") or [])
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and required <= value.keys():
            return text[start:end]
    return text
