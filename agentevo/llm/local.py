"""The ``local`` backbone: the converted embedded model, in-process with transformers on the CPU.

:class:`LocalChatModel` is a LangChain chat model, so LangGraph uses it like any other. The weights load once
per process and folder (about a second from safetensors) and are shared by every instance; one lock serialises
``generate`` because torch on two cores gains nothing from parallel generation. It honours ``response_format``
(a JSON schema) through :mod:`agentevo.llm.local_constrain`, so ``bind_tools`` holds replies to the tools' schemas
(:mod:`agentevo.llm.schema_tools`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

from agentevo.llm.closing import Generations
from agentevo.llm.config import EMBEDDED_MODEL_NAME
from agentevo.llm.fenced_tools import messages_to_plain
from agentevo.llm.local_constrain import constrain
from agentevo.llm.model_store import offline_env
from agentevo.llm.schema_tools import with_schema_tools


class LocalModelError(RuntimeError):
    """The local model folder cannot be loaded, or a request cannot fit its context."""


@dataclass
class LoadedModel:
    """One model folder in memory: weights, tokenizer, and the lock every generate call takes."""

    model_dir: Path
    model: Any
    tokenizer: Any
    context_length: int
    eos_token_ids: list[int]
    load_seconds: float
    lock: threading.Lock


_LOADED: dict[Path, LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def load_local_model(model_dir: Path, *, threads: int | None = None) -> LoadedModel:
    """Load (once per process) the model and tokenizer from a converted folder."""
    key = Path(model_dir).expanduser().resolve()
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if not (key / "config.json").is_file():
            raise LocalModelError(
                f"no model at {key} (config.json missing); run `agentevo model fetch` first"
            )
        offline_env()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        t0 = time.monotonic()
        try:
            tokenizer = AutoTokenizer.from_pretrained(key, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(key, dtype=torch.float32, local_files_only=True)
        except Exception as exc:
            raise LocalModelError(f"cannot load the model at {key}: {type(exc).__name__}: {exc}") from exc
        model.eval()
        if not tokenizer.chat_template:
            raise LocalModelError(f"the tokenizer at {key} has no chat template")
        eos = model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        loaded = LoadedModel(
            model_dir=key,
            model=model,
            tokenizer=tokenizer,
            context_length=int(getattr(model.config, "max_position_embeddings", 2048)),
            eos_token_ids=eos_ids,
            load_seconds=time.monotonic() - t0,
            lock=threading.Lock(),
        )
        _LOADED[key] = loaded
        return loaded


def cut_at_stop(
    text: str, stops: Sequence[str], patterns: Sequence[re.Pattern[str]] = ()
) -> tuple[str, bool]:
    """``text`` cut before the first stop string or after the first ``stop_after`` match; and whether one hit."""
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    cuts += [m.end() for m in (p.search(text) for p in patterns) if m]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def _stop_criteria(
    tokenizer: Any,
    prompt_len: int,
    stops: Sequence[str],
    patterns: Sequence[re.Pattern[str]],
    closed: threading.Event,
) -> Any:
    """Stop at a stop string or pattern, and at the next token once the model is closed."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopWhenClosed(StoppingCriteria):
        def __call__(
            self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
        ) -> torch.BoolTensor:
            flags = torch.full((input_ids.shape[0],), closed.is_set(), device=input_ids.device)
            return flags  # type: ignore[return-value]  # transformers' BoolTensor (legacy type) means Tensor

    class _StopOnText(StoppingCriteria):
        def __call__(
            self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
        ) -> torch.BoolTensor:
            done = [
                cut_at_stop(tokenizer.decode(row[prompt_len:], skip_special_tokens=True), stops, patterns)[1]
                for row in input_ids
            ]
            flags = torch.tensor(done, dtype=torch.bool, device=input_ids.device)
            return flags  # type: ignore[return-value]  # transformers' BoolTensor (legacy type) means Tensor

    return StoppingCriteriaList([_StopWhenClosed(), *([_StopOnText()] if stops or patterns else [])])


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, AIMessage):
        return "assistant"
    return "user"


class LocalChatModel(BaseChatModel):
    """SmolLM2-135M-Instruct (or any converted causal LM folder) as a LangChain chat model.

    Greedy decoding when ``temperature == 0``, sampling otherwise; honours ``max_tokens`` and ``stop`` (and the
    extra ``stop_after`` regexes); returns ``usage_metadata`` (input/output/total tokens) and
    ``response_metadata`` (model name, finish_reason). Call-time overrides: ``temperature``, ``max_tokens``,
    ``top_p``, ``seed``, ``repetition_penalty``, ``stop_after``, ``response_format``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    native_tool_calling: ClassVar[bool] = False
    structured_output: ClassVar[bool] = True  # honours response_format (a JSON schema)
    # Accepts ``stop_after=[regex, ...]``: stop once the generated text matches, keeping the match.
    supports_stop_after: ClassVar[bool] = True

    model_dir: Path
    model_name: str = Field(EMBEDDED_MODEL_NAME, alias="model")
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(512, ge=1)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: list[str] | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    threads: int | None = None
    _calls: Generations = PrivateAttr(default_factory=Generations)

    @property
    def _llm_type(self) -> str:
        return "agentevo-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_dir": str(self.model_dir),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def load(self) -> LoadedModel:
        """Load the weights now (they load on the first call otherwise)."""
        return load_local_model(self.model_dir, threads=self.threads)

    def prompt_ids(self, messages: Sequence[BaseMessage]) -> list[int]:
        """The token ids the model sees for ``messages`` (chat template applied, generation prompt added)."""
        loaded = self.load()
        chat = [{"role": _role(m), "content": m.content} for m in messages_to_plain(messages)]
        text = loaded.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return loaded.tokenizer(text, add_special_tokens=False)["input_ids"]

    def close(self, timeout: float = 60.0) -> bool:
        """Refuse new calls, stop running generations at their next token, and wait (at most ``timeout`` s) for
        them to end: whether none is left. Whoever opened the model calls it before the process exits: a thread
        left inside torch when the interpreter finalizes aborts the process (see :mod:`agentevo.llm.closing`)."""
        return self._calls.close(timeout)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._calls.running():
            return self._reply(messages, stop, run_manager, **kwargs)

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        loaded = self.load()
        tokenizer = loaded.tokenizer
        temperature = float(kwargs.get("temperature", self.temperature))
        max_new = int(kwargs.get("max_tokens", kwargs.get("max_new_tokens", self.max_tokens)))
        stops = [s for s in [*(self.stop or []), *(stop or [])] if s]
        seed = kwargs.get("seed", self.seed)
        patterns = [re.compile(p, re.DOTALL) for p in kwargs.get("stop_after") or []]

        ids = self.prompt_ids(messages)
        room = loaded.context_length - len(ids)
        if room < 1:
            raise LocalModelError(
                f"the prompt is {len(ids)} tokens; the model's context is {loaded.context_length} tokens"
            )
        max_new = max(1, min(max_new, room))
        input_ids = torch.tensor([ids])
        gen_kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": max_new,
            "eos_token_id": loaded.eos_token_ids,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else loaded.eos_token_ids[0],
        }
        if temperature > 0:
            gen_kwargs.update(
                do_sample=True, temperature=temperature, top_p=float(kwargs.get("top_p", self.top_p))
            )
        else:
            gen_kwargs.update(do_sample=False)
        penalty = kwargs.get("repetition_penalty", self.repetition_penalty)
        if penalty:
            gen_kwargs["repetition_penalty"] = float(penalty)
        closed = self._calls.closed
        gen_kwargs["stopping_criteria"] = _stop_criteria(tokenizer, len(ids), stops, patterns, closed)
        constrain(gen_kwargs, tokenizer, len(ids), kwargs.get("response_format"))

        t0 = time.monotonic()
        with self._calls.holding(loaded.lock), torch.inference_mode():
            if seed is not None and temperature > 0:
                torch.manual_seed(int(seed))
            output = loaded.model.generate(**gen_kwargs)
        self._calls.refuse_if_closed()  # cut short by close(): the reply is no answer
        seconds = time.monotonic() - t0

        new_ids = output[0, len(ids) :].tolist()
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        text, hit = cut_at_stop(text, stops, patterns)
        ended = bool(new_ids) and new_ids[-1] in loaded.eos_token_ids
        finish_reason = "stop" if hit or ended or len(new_ids) < max_new else "length"
        usage = UsageMetadata(
            input_tokens=len(ids), output_tokens=len(new_ids), total_tokens=len(ids) + len(new_ids)
        )
        message = AIMessage(
            content=text,
            usage_metadata=usage,
            response_metadata={
                "model_name": self.model_name,
                "model_provider": "agentevo-local",
                "finish_reason": finish_reason,
                "generation_seconds": round(seconds, 3),
            },
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish_reason})],
            llm_output={"model_name": self.model_name, "token_usage": dict(usage)},
        )

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """No native tool calling: replies are held to the tools' schemas by constrained decoding."""
        return with_schema_tools(self, tools, tool_choice=tool_choice)


__all__ = ["LoadedModel", "LocalChatModel", "LocalModelError", "load_local_model"]
