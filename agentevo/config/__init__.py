"""The agentevo configuration: one pydantic model, loaded from YAML, overridden by environment.

Precedence, strongest first: ``AGENTEVO_*`` environment variables (nested with ``__``, e.g.
``AGENTEVO_SANDBOX__MEMORY=2g``), then the YAML file, then the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agentevo.config.evolve import EvolveConfig
from agentevo.files import default_cache_dir
from agentevo.llm.config import LLMConfig
from agentevo.memory.config import MemoryConfig
from agentevo.sandbox.config import SandboxConfig
from agentevo.train.config import TrainConfig

CONFIG_ENV = "AGENTEVO_CONFIG"
DEFAULT_CONFIG_FILE = Path("agentevo.yaml")


class ConfigError(ValueError):
    """A configuration problem, worded as one line that names the field."""


class ResilienceConfig(BaseModel):
    """How a run survives its infrastructure: what is retried, how often, and how a backbone is watched.

    Whatever the infrastructure spoils (a backbone that died or hung, a Docker engine that failed, an evaluation
    sandbox that broke, the gateway) is retried, and never scored against the agent.
    """

    model_config = ConfigDict(extra="forbid")

    attempt_retries: int = Field(
        2, ge=0, description="Times an episode or evaluation spoiled by the infrastructure is run again."
    )
    request_retries: int = Field(
        6,
        ge=0,
        description="Times the gateway sends a model call again after the backbone failed it (pauses of 0.25 s "
        "doubling to 4 s: about 12 s in all, long enough for the watchdog to notice a hung backbone).",
    )
    backbone_restarts: int = Field(
        3, ge=0, description="Restarts of a supervised backbone per run; then it gives up."
    )
    health_interval: float = Field(
        1.0, gt=0, description="Seconds between two health checks of the backbone."
    )
    health_deadline: float = Field(
        10.0, gt=0, description="Seconds the backbone may fail its health check before it is restarted."
    )
    docker_wait: float = Field(
        120.0,
        gt=0,
        description="How long a retry waits for a Docker engine that stopped answering to return.",
    )


class AgentevoConfig(BaseSettings):
    """Everything agentevo can be told. Every subsystem reads its own section."""

    model_config = SettingsConfigDict(env_prefix="AGENTEVO_", env_nested_delimiter="__", extra="forbid")

    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)
    evolve: EvolveConfig = Field(default_factory=EvolveConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    archives_dir: Path = Field(Path("archives"), description="Where runs write their archives and results.")
    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="Wheelhouses, models, build locks."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML arrives as init kwargs; the environment must win over it.
        return env_settings, init_settings


def _one_line(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return f"invalid config ({source}): " + "; ".join(problems)


def load_config(path: str | Path | None = None) -> AgentevoConfig:
    """Load the config from ``path``, ``$AGENTEVO_CONFIG`` or ``./agentevo.yaml`` (when present).

    Raises:
        ConfigError: the file is missing, is not valid YAML, or a field is invalid.
    """
    chosen = (
        path or os.environ.get(CONFIG_ENV) or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None)
    )
    data: dict[str, Any] = {}
    source = "defaults and environment"
    if chosen:
        source = str(chosen)
        try:
            text = Path(chosen).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config {chosen}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"invalid config ({chosen}): not valid YAML{where}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"invalid config ({chosen}): the top level must be a mapping of sections")
        data = loaded or {}
    try:
        return AgentevoConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None
