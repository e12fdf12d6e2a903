"""Constrained decoding for the in-process model: llguidance keeps each generated token inside a JSON schema,
and a repetition stop ends a reply that loops.

llguidance (the grammar engine behind guidance, and one of vLLM's structured-output back ends) ships as one
wheel with no dependencies and computes a token mask in microseconds, so the ``local`` backbone honours
``response_format`` like the servers do. The JSON it allows has no free whitespace (a small model given room for
whitespace spends tokens on it) and, like llama.cpp's grammars, keeps the schema's property order. Its tokenizer table takes about a second to
build; it is built once per tokenizer and kept.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from agentevo.llm.structured import SchemaUnsupported, repetitive, requested_schema

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions  # (typing only: llguidance loads with the first schema)

_TOKENIZERS: dict[int, Any] = {}  # id(HF tokenizer) -> llguidance.LLTokenizer
_TOKENIZERS_LOCK = threading.Lock()
JSON_OPTIONS: JsonCompileOptions = {"whitespace_flexible": False}  # compact JSON


def _ll_tokenizer(tokenizer: Any) -> Any:
    import llguidance.hf

    with _TOKENIZERS_LOCK:
        if id(tokenizer) not in _TOKENIZERS:
            _TOKENIZERS[id(tokenizer)] = llguidance.hf.from_tokenizer(tokenizer)
        return _TOKENIZERS[id(tokenizer)]


def schema_matcher(tokenizer: Any, schema: dict[str, Any]) -> Any:
    """An llguidance matcher for ``schema``; SchemaUnsupported naming what it cannot compile."""
    import llguidance

    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS)
    except ValueError as exc:
        raise SchemaUnsupported(f"the local backbone cannot read this schema: {exc}") from None
    matcher = llguidance.LLMatcher(_ll_tokenizer(tokenizer), grammar, log_level=0)
    if matcher.is_error():
        raise SchemaUnsupported(f"the local backbone cannot constrain to this schema: {matcher.get_error()}")
    return matcher


def _schema_processor(matcher: Any, prompt_len: int) -> Any:
    import numpy as np
    import torch
    from transformers import LogitsProcessor

    class _SchemaLogits(LogitsProcessor):
        """Feeds the tokens generated so far to the matcher and masks every token it does not allow next."""

        consumed = 0

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            new = input_ids[0, prompt_len:].tolist()
            for token in new[self.consumed :]:
                matcher.consume_token(token)
            self.consumed = len(new)
            bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
            allowed = np.zeros(scores.shape[-1], dtype=bool)
            n = min(len(bits), len(allowed))
            allowed[:n] = bits[:n].astype(bool)
            # transformers annotates FloatTensor (a legacy type no torch operation returns): it means Tensor
            return scores.masked_fill(torch.from_numpy(~allowed), float("-inf"))  # type: ignore[return-value]

    return _SchemaLogits()


def _repetition_stop(tokenizer: Any, prompt_len: int) -> Any:
    from transformers import StoppingCriteria

    class _RepetitionStop(StoppingCriteria):
        """Ends generation once the reply's tail is a loop (the caller names the failure ``repetition``)."""

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            done = [
                repetitive(tokenizer.decode(row[prompt_len:], skip_special_tokens=True)) for row in input_ids
            ]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return _RepetitionStop()


def constrain(gen_kwargs: dict[str, Any], tokenizer: Any, prompt_len: int, fmt: Any) -> None:
    """Add to ``generate``'s kwargs what ``response_format`` ``fmt`` asks for (nothing when it asks for none)."""
    schema = requested_schema(fmt)
    if schema is None:
        return
    from transformers import LogitsProcessorList, StoppingCriteriaList

    matcher = schema_matcher(tokenizer, schema)
    gen_kwargs["logits_processor"] = LogitsProcessorList([_schema_processor(matcher, prompt_len)])
    stops = StoppingCriteriaList(gen_kwargs.get("stopping_criteria") or [])
    stops.append(_repetition_stop(tokenizer, prompt_len))
    gen_kwargs["stopping_criteria"] = stops
