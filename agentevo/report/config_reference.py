"""The configuration reference (docs/configuration.md), generated from the pydantic models so it cannot drift:
``agentevo config reference`` rewrites it, and a test fails when the committed file differs from the models."""

from __future__ import annotations

import inspect
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agentevo.config import AgentevoConfig, default_cache_dir
from agentevo.sandbox.config import parse_size

ENV_PREFIX, ENV_NESTED = "AGENTEVO_", "__"
KEY = "<key>"  # a section that is the value type of a map (e.g. evolve.prices.<key>)
# Defaults computed from the environment are shown as the rule, not as this machine's value.
DYNAMIC_DEFAULTS = {default_cache_dir: "`$XDG_CACHE_HOME/agentevo` (else `~/.cache/agentevo`)"}
HEADER = """# Configuration reference

<!-- Generated from the pydantic models by `agentevo config reference`; do not edit by hand. -->

agentevo reads `agentevo.yaml` in the working directory (or the file named by `--config` or `$AGENTEVO_CONFIG`),
then environment variables, which win: `AGENTEVO_<SECTION>__<FIELD>` (nested sections joined by `__`, e.g.
`AGENTEVO_SANDBOX__MEMORY=2g`). Every field is optional; an unknown or invalid one is refused with one line that
names it. Sizes take Docker-style units (`512m`, `2g`).

```yaml
# agentevo.yaml: a few fields of each kind
sandbox: {memory: 2g, cpus: 2}
llm: {backbone: llamacpp, llamacpp: {parallel: 4}}
evolve: {policy: dgm, operator: reflect, max_nodes: 12, stages: [{name: small, tasks: 3}]}
```

"""


def reference(model: type[BaseModel] = AgentevoConfig) -> str:
    """The whole document: one section per model, in the order a reader meets them (a model met again, such as
    ``evolve.mutator``'s LLMConfig, links to its first section)."""
    sections: list[str] = []
    _section(model, [], sections, {model: ""})
    return HEADER + "\n".join(sections)


def _section(
    model: type[BaseModel], path: list[str], out: list[str], seen: dict[type[BaseModel], str]
) -> None:
    doc = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    lines = [f"## `{'.'.join(path)}`" if path else "## Top level", "", doc, ""]
    lines += ["| field | type | default | environment | description |", "| --- | --- | --- | --- | --- |"]
    nested: list[tuple[type[BaseModel], list[str]]] = []
    for name, field in model.model_fields.items():
        sub = _model_in(field.annotation)
        where = [*path, name + ("[]" if _is_list(field.annotation) else "")]
        if get_origin(field.annotation) is dict:
            where.append(KEY)
        link = ""
        if sub is not None:
            if sub not in seen:
                seen[sub] = ".".join(where)
                nested.append((sub, where))
            link = f"[{sub.__name__}](#{_anchor(seen[sub])})"
        in_list = any(part.endswith("[]") or part == KEY for part in path)
        named = ENV_NESTED.join(p.removesuffix("[]") for p in where if p != KEY).upper()
        env = "-" if in_list else f"`{ENV_PREFIX}{named}`"
        lines.append(
            f"| `{name}` | {_field_type(field, link)} | {_default(field)} | {env} | {_cell(field.description or '')} |"
        )
    out.append("\n".join(lines) + "\n")
    for sub, where in nested:
        _section(sub, where, out, seen)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (directly, optionally or as list items), if any."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list


def _is_size(field: FieldInfo) -> bool:
    return any(getattr(meta, "func", None) is parse_size for meta in field.metadata)


def _field_type(field: FieldInfo, model_link: str = "") -> str:
    return "size" if _is_size(field) else _type(field.annotation, model_link)


def _type(annotation: Any, model_link: str = "") -> str:
    if model_link and (inspect.isclass(annotation) and issubclass(annotation, BaseModel)):
        return model_link
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0], model_link)
    if origin in (Union, types.UnionType):
        parts = [_type(a, model_link) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" \\| null" if type(None) in args else "")
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0], model_link)}"
    if origin is dict:
        return f"map of {_type(args[0])} to {_type(args[1], model_link)}"
    if inspect.isclass(annotation) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return {Path: "path", str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, str(annotation)
    )


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        factory = field.default_factory
        if factory in DYNAMIC_DEFAULTS:
            return DYNAMIC_DEFAULTS[factory]
        if inspect.isclass(factory) and issubclass(factory, BaseModel):
            return "(section)"
        value = factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return f"`{_plain(value, field)}`"


def _plain(value: Any, field: FieldInfo) -> str:
    if value is None:
        return "null"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and _is_size(field):
        return _size(value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json", exclude_defaults=True), field)
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v, field) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v, field)}" for k, v in value.items()) + "}"
    return _cell(str(value)).replace("`", "'")


def _size(value: int) -> str:
    for unit, factor in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(title: str) -> str:
    return "".join(ch for ch in title.lower() if ch.isalnum() or ch in "-_ ").replace(" ", "-")
