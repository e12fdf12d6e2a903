"""The adapter registry: ``<adapters_dir>/<name>-v<k>/`` folders with their lineage, and the active name.

A version folder holds the peft files (``adapter_config.json``, ``adapter_model.safetensors``) and
``lineage.json`` (base model hash, data hash, training config, metrics). It is built in a hidden staging folder
and renamed into place in one step, so a reader (or a server loading it) never sees half an adapter, whatever
kills the writer. ``active.json`` names the adapter the gateway serves (None: the base model) and keeps the
history of promotions, refusals and rollbacks with their reasons.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentevo.files import file_lock, write_json_atomic
from agentevo.llm.model_store import read_manifest, sha256_file

LINEAGE_NAME = "lineage.json"
ACTIVE_NAME = "active.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
STAGING_PREFIX = ".staging-"


class RegistryError(ValueError):
    """The registry cannot do what was asked; the message names the adapter and the fix."""


class Lineage(BaseModel):
    """Where an adapter came from: enough to reproduce it and to refuse it on another base model."""

    name: str = Field(description="The served name, <family>-v<k>.")
    family: str
    version: int
    base_model: str = Field(description="The model folder it was trained on.")
    base_model_sha256: str = Field(description="Fingerprint of the base weights (see base_fingerprint).")
    recipe: str
    dataset: str
    data_sha256: str
    parent: str | None = Field(None, description="The adapter active when this one was trained.")
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: float = Field(default_factory=time.time)


class Decision(BaseModel):
    """One change (or refusal to change) of the active adapter, and why."""

    time: float = Field(default_factory=time.time)
    action: str = Field(description="promote | keep | rollback")
    candidate: str | None
    previous: str | None
    active: str | None = Field(description="The active name after the decision.")
    reason: str
    scores: dict[str, Any] = Field(default_factory=dict)


class ActiveState(BaseModel):
    """``active.json``: the served adapter, the names it replaced (for rollback), and every decision."""

    active: str | None = None
    replaced: list[str | None] = Field(default_factory=list, description="Earlier actives, oldest first.")
    decisions: list[Decision] = Field(default_factory=list)


def base_fingerprint(model_dir: Path) -> str:
    """The base weights' sha256: from the embedded model's manifest when it has one, else hashed here."""
    manifest = read_manifest(model_dir)
    entry = (manifest or {}).get("files", {}).get("model.safetensors")
    if entry and entry.get("sha256"):
        return str(entry["sha256"])
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    if not weights:
        raise RegistryError(f"{model_dir} holds no *.safetensors weights to fingerprint")
    digests = [sha256_file(path) for path in weights]
    return digests[0] if len(digests) == 1 else hashlib.sha256("\n".join(digests).encode()).hexdigest()


class AdapterRegistry:
    """Versions of one adapter family under ``root`` and the pointer to the active one."""

    def __init__(self, root: Path, family: str = "agent") -> None:
        self.root = Path(root)
        self.family = family
        self._pattern = re.compile(rf"^{re.escape(family)}-v(\d+)$")

    # -- versions

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.root / ".registry.lock")

    def path(self, name: str) -> Path:
        return self.root / name

    def versions(self) -> list[Lineage]:
        """Complete versions, oldest first (a folder without its lineage or weights is not one)."""
        found = []
        if not self.root.is_dir():
            return []
        for folder in self.root.iterdir():
            if self._pattern.match(folder.name) and self._complete(folder):
                found.append(Lineage.model_validate_json((folder / LINEAGE_NAME).read_text()))
        return sorted(found, key=lambda lineage: lineage.version)

    @staticmethod
    def _complete(folder: Path) -> bool:
        return all((folder / name).is_file() for name in (*ADAPTER_FILES, LINEAGE_NAME))

    def get(self, name: str) -> Lineage:
        """A version's lineage; RegistryError naming the known versions otherwise."""
        folder = self.path(name)
        if not self._pattern.match(name) or not self._complete(folder):
            known = ", ".join(v.name for v in self.versions()) or "none"
            raise RegistryError(f"no adapter {name!r} in {self.root} (known: {known})")
        return Lineage.model_validate_json((folder / LINEAGE_NAME).read_text())

    def staging(self) -> Path:
        """A fresh hidden folder to build a version in (committed with :meth:`commit`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f"{STAGING_PREFIX}{os.getpid()}-{time.time_ns()}"
        folder.mkdir()
        return folder

    def commit(self, staged: Path, lineage: dict[str, Any]) -> Lineage:
        """Give the staged adapter the next version number, write its lineage, and rename it into place."""
        missing = [name for name in ADAPTER_FILES if not (staged / name).is_file()]
        if missing:
            raise RegistryError(f"{staged} is not a complete adapter (missing {', '.join(missing)})")
        with self._lock():
            taken = [int(m.group(1)) for p in self.root.iterdir() if (m := self._pattern.match(p.name))]
            version = max(taken, default=0) + 1
            name = f"{self.family}-v{version}"
            record = Lineage(name=name, family=self.family, version=version, **lineage)
            write_json_atomic(staged / LINEAGE_NAME, record.model_dump(mode="json"))
            os.rename(staged, self.path(name))
        return record

    def scaled(self, name: str, factor: float) -> Lineage:
        """A new version: ``name``'s weights at ``factor`` of their strength (``lora_alpha`` x factor). Below 1 it
        lies between the base model and the adapter, as WiSE-FT's weight interpolation does: a full-strength adapter
        trained on a few templates can break tasks unlike them, and a weaker one may keep both."""
        if not 0 < factor <= 2:
            raise RegistryError(
                f"scale {factor} is out of range: give a factor above 0 and at most 2, e.g. 0.5"
            )
        source = self.get(name)
        staged = self.staging()
        for file in ADAPTER_FILES:
            shutil.copy2(self.path(name) / file, staged / file)
        settings = json.loads((staged / "adapter_config.json").read_text())
        settings["lora_alpha"] = settings.get("lora_alpha", settings.get("r", 8)) * factor
        write_json_atomic(staged / "adapter_config.json", settings)
        lineage = source.model_dump(exclude={"name", "family", "version", "created", "metrics"})
        metrics = {**source.metrics, "scaled_from": name, "scale": factor}
        return self.commit(staged, {**lineage, "parent": name, "metrics": metrics})

    def clean_staging(self, older_than: float = 0.0) -> int:
        """Remove staging folders that a killed writer left (older than ``older_than`` seconds)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in self.root.glob(f"{STAGING_PREFIX}*"):
            if time.time() - folder.stat().st_mtime >= older_than:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    # -- the active adapter

    def state(self) -> ActiveState:
        file = self.root / ACTIVE_NAME
        if not file.is_file():
            return ActiveState()
        try:
            return ActiveState.model_validate(json.loads(file.read_text()))
        except ValueError as exc:
            raise RegistryError(
                f"{file} is unreadable ({exc}); restore it or delete it to serve the base"
            ) from None

    def active(self) -> str | None:
        """The adapter the gateway serves (None: the base model)."""
        return self.state().active

    def decide(self, decision: Decision) -> ActiveState:
        """Record a decision; a ``promote`` or ``rollback`` also moves the active name."""
        with self._lock():
            state = self.state()
            if decision.action == "promote":
                state.replaced.append(state.active)
                state.active = decision.candidate
            elif decision.action == "rollback":
                state.active = state.replaced.pop() if state.replaced else None
            decision.active = state.active
            state.decisions.append(decision)
            write_json_atomic(self.root / ACTIVE_NAME, state.model_dump(mode="json"))
        return state

    def check_base(self, name: str, base_sha256: str) -> Lineage:
        """The version's lineage, if it was trained on these base weights; RegistryError otherwise."""
        lineage = self.get(name)
        if lineage.base_model_sha256 != base_sha256:
            raise RegistryError(
                f"adapter {name!r} was trained on another base model (weights {lineage.base_model_sha256[:12]} "
                f"from {lineage.base_model}; the server's are {base_sha256[:12]}): train one on this base"
            )
        return lineage
