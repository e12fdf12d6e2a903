"""Arms: the ways of running an agent that a comparison sets side by side, and how a user writes them.

On the command line an arm is ``NAME=AGENT[,KEY=VALUE,...]``::

    --arm base=seed
    --arm short=seed,max_steps=1
    --arm evolved=archive:20260101-120000-ab12cd:best,memory=on
    --arm big=seed,base_url=http://127.0.0.1:8000/v1,model=qwen2.5-7b,temperature=0.7
    --arm tuned=seed,adapter=rft-v3,llm.max_tokens=256

and in a YAML file (``--arms FILE``) a mapping of names to the same keys, or to the same spec string::

    base: seed
    short: {agent: seed, max_steps: 1}

The first arm is the baseline every other arm is compared with. Keys: ``agent`` (``seed``, a folder,
``archive:RUN:NODE`` or ``archive:RUN:best``), ``memory`` (``off``, ``on``, or the path of a library, which turns it
on), ``adapter`` (``none``, ``active`` or a registry name), ``backbone``, ``base_url`` (an OpenAI-compatible
endpoint, which selects the ``openai`` backbone), ``model``, ``temperature``, ``max_steps``, ``max_tokens``; any key
with a dot sets that configuration field for the arm alone (``llm.max_tokens=256``, ``sandbox.memory=2g``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentevo.agents.episode import EpisodeBudget
from agentevo.config import AgentevoConfig
from agentevo.llm.config import Backbone

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ACTIVE_ADAPTER = "active"  # the registry's active adapter, as `agentevo run` serves it
_OFF, _ON = {"off", "false", "no", "0"}, {"on", "true", "yes", "1"}


class ArmError(ValueError):
    """An arm cannot be read or applied; the message names the arm, the key and the fix."""


class Arm(BaseModel):
    """One way to run an agent. Unset fields keep what the configuration says (memory: off; adapter: none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=NAME_PATTERN, description="Its column in the tables and its agent_id in the rows."
    )
    agent: str = Field("seed", description="seed | a folder | archive:RUN:NODE | archive:RUN:best")
    memory: bool = Field(False, description="Lessons from an experience library, read through the gateway.")
    library: Path | None = Field(None, description="The library's folder (default: memory.path).")
    adapter: str | None = Field(
        None,
        description="None: the base weights; 'active': the registry's active adapter; else a registry name.",
    )
    backbone: Backbone | None = None
    base_url: str | None = Field(None, description="An OpenAI-compatible endpoint (the openai backbone).")
    model: str | None = None
    temperature: float | None = Field(None, ge=0)
    max_steps: int | None = Field(None, ge=1, description="Model calls per episode.")
    max_tokens: int | None = Field(None, ge=1, description="Tokens per episode.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Configuration fields by dotted path, e.g. llm.max_tokens."
    )

    @model_validator(mode="before")
    @classmethod
    def _spelled(cls, data: Any) -> Any:
        """Accept the spellings of the spec: ``memory=PATH``, ``adapter=none``, dotted keys as config fields."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        dotted = {k: data.pop(k) for k in [k for k in data if "." in k]}
        data["config"] = {**data.get("config", {}), **dotted}
        data.update(_memory(data.get("memory")))
        if str(data.get("adapter", "")).lower() == "none":
            data["adapter"] = None
        return data

    def settings(self, base: AgentevoConfig) -> AgentevoConfig:
        """``base`` with this arm's backbone, model, memory and configuration fields applied."""
        given: dict[str, object] = {"base_url": self.base_url, "model": self.model}
        llm = {k: v for k, v in given.items() if v is not None}
        if self.base_url is not None:
            llm["backbone"] = "openai"
        if self.backbone is not None:
            llm["backbone"] = self.backbone
        if self.temperature is not None:
            llm["temperature"] = self.temperature
        # Memory is read, not taught: held-out episodes write no outcome or case (``memory.learn=true`` to).
        fields = {
            **{f"llm.{k}": v for k, v in llm.items()},
            "memory.enabled": self.memory,
            "memory.learn": False,
        }
        if self.library is not None:
            fields["memory.path"] = self.library
        config = base
        for path, value in {**fields, **self.config}.items():
            config = self._set(config, path, value)
        return config

    def budget(self) -> EpisodeBudget | None:
        """The episode budget the arm sets (None: the agent's own)."""
        given = {k: v for k, v in {"max_steps": self.max_steps, "max_tokens": self.max_tokens}.items() if v}
        return EpisodeBudget(**given) if given else None

    def describe(self) -> str:
        """The arm as its spec, without the name: how tables and the JSON show it."""
        skip = {"name", "config"}
        fields = self.model_dump(exclude_defaults=True, exclude=skip, mode="json")
        agent = fields.pop("agent", "seed")
        fields.pop("library", None)
        if self.memory:
            fields["memory"] = str(self.library) if self.library else "on"
        return ",".join([agent, *(f"{k}={v}" for k, v in {**fields, **self.config}.items())])

    def _set(self, config: AgentevoConfig, path: str, value: Any) -> AgentevoConfig:
        section, *rest = path.split(".")
        current = getattr(config, section, None)
        if not isinstance(current, BaseModel) or not rest:
            raise ArmError(
                f"arm {self.name!r}: {path!r} is not a configuration field (use SECTION.FIELD, e.g. llm.max_tokens; "
                "`agentevo config reference` lists them)"
            )
        try:
            return config.model_copy(update={section: _nested(current, rest, value)})
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise ArmError(f"arm {self.name!r}: {path}={value!r}: {problem}") from None


def _nested(model: BaseModel, path: list[str], value: Any) -> BaseModel:
    """``model`` with the field at ``path`` set to ``value``, validated by its model (unknown fields refused)."""
    head, *rest = path
    data = model.model_dump()
    child = getattr(model, head, None)
    data[head] = _nested(child, rest, value) if rest and isinstance(child, BaseModel) else value
    return type(model).model_validate(data)


def _memory(value: Any) -> dict[str, Any]:
    """``memory`` as the spec spells it (off, on, or a library path) as the model's fields."""
    if value is None or isinstance(value, bool):
        return {} if value is None else {"memory": value}
    text = str(value).strip()
    if text.lower() in _OFF | _ON:
        return {"memory": text.lower() in _ON}
    return {"memory": True, "library": Path(text).expanduser()}


def parse_arm(text: str) -> Arm:
    """``NAME=AGENT[,KEY=VALUE,...]`` (see the module's doc) as an :class:`Arm`."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or "," in name:
        raise ArmError(f"--arm {text!r}: write NAME=AGENT[,KEY=VALUE,...], e.g. --arm short=seed,max_steps=1")
    return arm_from(name.strip(), spec)


def arm_from(name: str, spec: str | dict[str, Any] | None) -> Arm:
    """An arm from a spec string (``AGENT[,KEY=VALUE,...]``) or a mapping of the same keys."""
    fields = _spec_fields(name, spec) if isinstance(spec, str) else dict(spec or {})
    try:
        return Arm(name=name, **fields)
    except ValidationError as exc:
        raise ArmError(f"arm {name!r}: {'; '.join(_problem(e) for e in exc.errors())}") from None
    except TypeError as exc:
        raise ArmError(f"arm {name!r}: {exc}") from None


def _problem(error: Any) -> str:
    key = ".".join(map(str, error["loc"])) or "spec"
    if error["type"] == "extra_forbidden":
        keys = ", ".join(k for k in Arm.model_fields if k not in ("name", "library", "config"))
        return f"unknown key {key!r} (keys: {keys}, or a configuration field such as llm.max_tokens)"
    return f"{key}: {error['msg']}"


def _spec_fields(name: str, spec: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for index, item in enumerate(part.strip() for part in spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep and index == 0 and item:
            fields["agent"] = item
        elif sep and key.strip() and value.strip():
            fields[key.strip()] = value.strip()
        else:
            raise ArmError(
                f"arm {name!r}: {item!r} in {spec!r} is not KEY=VALUE (the agent comes first, bare: "
                "seed, a folder or archive:RUN:NODE)"
            )
    return fields


def load_arms(path: Path) -> list[Arm]:
    """The arms of a YAML file: a mapping of names to spec strings or mappings, in order (the first is the
    baseline)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ArmError(f"cannot read the arms file {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ArmError(f"the arms file {path} is not valid YAML") from None
    if not isinstance(data, dict) or not data:
        raise ArmError(f"the arms file {path} must map arm names to specs, e.g. `base: seed`")
    return [arm_from(str(name), spec) for name, spec in data.items()]


def check_arms(arms: list[Arm]) -> list[Arm]:
    """``arms``, refused unless there are at least two with distinct names."""
    names = [arm.name for arm in arms]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ArmError(f"arm names must differ; given more than once: {', '.join(twice)}")
    if len(arms) < 2:
        raise ArmError("a comparison needs at least two arms (--arm NAME=SPEC twice, or --arms FILE)")
    return arms
