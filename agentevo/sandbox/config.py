"""Sandbox settings: hardened by default, every limit configurable, loosening only when confirmed."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Parse a Docker-style size (``512m``, ``2g``, ``1GiB``, ``4096``) into bytes."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r} (use e.g. 512m or 2g)")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError(f"invalid size {value!r} (use e.g. 512m or 2g)")
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


Size = Annotated[int, BeforeValidator(parse_size)]
Loosening = Literal["network", "read_only_root", "no_new_privileges", "cap_add", "user"]
ProviderName = Literal["docker"]  # a second provider adds its name here and its class to providers.PROVIDERS


class SandboxConfig(BaseModel):
    """How a sandbox container is started. Defaults are the hardened profile."""

    model_config = ConfigDict(extra="forbid")

    # Declared first so the validators of the fields below can see it.
    allow_weaker: list[Loosening] = Field(
        default_factory=list,
        description="Hardening settings the user knowingly weakens; any other weakening is refused.",
    )
    provider: ProviderName = Field(
        "docker", description="Where sandboxes run (docs/sandbox.md): docker, the engine DOCKER_HOST names."
    )
    image: str = Field("python", description="A recipe name under sandboxes/ or a full image reference.")
    user: str = Field("1000:1000", description="uid:gid the sandbox runs as.")
    network: str = Field("none", description="Docker network mode; anything but 'none' must be allowed.")
    read_only_root: bool = True
    no_new_privileges: bool = True
    cap_add: list[str] = Field(
        default_factory=list, description="Capabilities added back after dropping ALL."
    )
    memory: Size = Field(parse_size("1g"), description="Memory limit, swap included.")
    cpus: float = Field(1.0, gt=0, description="CPU share, e.g. 1.5 cores.")
    pids: int = Field(256, ge=16, description="Maximum processes and threads (stops fork bombs).")
    workspace_size: Size = Field(parse_size("512m"), description="Size of the /workspace tmpfs.")
    tmp_size: Size = Field(parse_size("256m"), description="Size of the /tmp tmpfs.")
    file_size_limit: Size = Field(parse_size("256m"), description="Largest file a process may write.")
    open_files: int = Field(1024, ge=64)
    ttl_seconds: int = Field(3600, ge=10, description="A sandbox ends itself after this long.")
    exec_timeout: float = Field(120.0, gt=0, description="Default per-command timeout in seconds.")
    max_output_bytes: Size = Field(parse_size("1m"), description="Output kept per command (head + tail).")
    pass_env: list[str] = Field(
        default_factory=list, description="Names of host environment variables passed into every sandbox."
    )
    pool_size: int = Field(2, ge=0, le=64, description="Warm sandboxes kept ready by a SandboxPool.")

    @staticmethod
    def _require(name: Loosening, weaker: bool, info: ValidationInfo, shown: object) -> None:
        if weaker and name not in info.data.get("allow_weaker", []):
            raise ValueError(
                f"{shown!r} weakens the sandbox; add '{name}' to sandbox.allow_weaker to confirm"
            )

    @field_validator("network")
    @classmethod
    def _network(cls, value: str, info: ValidationInfo) -> str:
        cls._require("network", value != "none", info, value)
        return value

    @field_validator("read_only_root", "no_new_privileges")
    @classmethod
    def _flags(cls, value: bool, info: ValidationInfo) -> bool:
        cls._require(info.field_name, not value, info, value)  # type: ignore[arg-type]
        return value

    @field_validator("cap_add")
    @classmethod
    def _caps(cls, value: list[str], info: ValidationInfo) -> list[str]:
        cls._require("cap_add", bool(value), info, value)
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str, info: ValidationInfo) -> str:
        if not re.fullmatch(r"\d+:\d+", value):
            raise ValueError(f"{value!r} must be numeric uid:gid, e.g. 1000:1000")
        cls._require("user", value.split(":")[0] == "0", info, value)
        return value

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])

    @property
    def gid(self) -> int:
        return int(self.user.split(":")[1])
