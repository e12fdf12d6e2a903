"""The adapter registry: whole versions only, lineage, the active name with its history, rollback, foreign bases.

These tests commit stand-in adapter files (the registry moves files; it never reads weights). Real adapters
trained on the embedded model go through the same calls in test_lora_loop.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentevo.train.registry import ACTIVE_NAME, AdapterRegistry, Decision, RegistryError

LINEAGE = {
    "base_model": "/models/base", "base_model_sha256": "a" * 64, "recipe": "rft", "dataset": "/data/rft-1",
    "data_sha256": "b" * 64,
}  # fmt: skip


def staged(registry: AdapterRegistry) -> Path:
    folder = registry.staging()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_versions_are_numbered_whole_and_carry_their_lineage(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path, "agent")
    first = registry.commit(staged(registry), LINEAGE)
    second = registry.commit(staged(registry), {**LINEAGE, "parent": "agent-v1"})
    assert (first.name, second.name) == ("agent-v1", "agent-v2") and second.parent == "agent-v1"
    assert [v.name for v in registry.versions()] == ["agent-v1", "agent-v2"]
    assert registry.get("agent-v2").base_model_sha256 == "a" * 64
    assert sorted(p.name for p in registry.path("agent-v1").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "lineage.json",
    ]  # fmt: skip
    # A staged folder missing its weights is refused and nothing is committed.
    broken = registry.staging()
    (broken / "adapter_config.json").write_text("{}")
    with pytest.raises(RegistryError, match="missing adapter_model.safetensors"):
        registry.commit(broken, LINEAGE)
    with pytest.raises(RegistryError, match=r"no adapter 'agent-v9' .*known: agent-v1, agent-v2"):
        registry.get("agent-v9")
    assert registry.clean_staging() == 1 and not list(tmp_path.glob(".staging-*"))


def test_a_writer_killed_while_committing_leaves_no_half_version(tmp_path: Path) -> None:
    """A process killed while it writes an adapter leaves a hidden staging folder, never a version."""
    code = (
        "import sys, time; from agentevo.train.registry import AdapterRegistry\n"
        "r = AdapterRegistry(sys.argv[1]); f = r.staging()\n"
        "(f / 'adapter_config.json').write_text('{}'); print('writing', flush=True)\n"
        "with open(f / 'adapter_model.safetensors', 'wb') as fh:\n"
        "    while True: fh.write(b'x' * 4096); fh.flush(); time.sleep(0.01)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    registry = AdapterRegistry(tmp_path)
    assert registry.versions() == [] and not list(tmp_path.glob("agent-v*"))
    assert len(list(tmp_path.glob(".staging-*"))) == 1
    assert registry.commit(staged(registry), LINEAGE).name == "agent-v1"  # numbering is not disturbed


def test_decisions_move_the_active_name_and_rollback_restores_the_previous(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    for _ in range(2):
        registry.commit(staged(registry), LINEAGE)
    assert registry.active() is None
    registry.decide(Decision(action="promote", candidate="agent-v1", previous=None, active=None, reason="r1"))
    registry.decide(
        Decision(action="keep", candidate="agent-v2", previous="agent-v1", active=None, reason="tie")
    )
    assert registry.active() == "agent-v1"
    registry.decide(
        Decision(action="promote", candidate="agent-v2", previous="agent-v1", active=None, reason="r2")
    )
    assert registry.active() == "agent-v2"
    state = registry.decide(
        Decision(action="rollback", candidate=None, previous="agent-v2", active=None, reason="x")
    )
    assert state.active == "agent-v1" and state.replaced == [None]
    assert [d.action for d in state.decisions] == ["promote", "keep", "promote", "rollback"]
    assert [d.active for d in state.decisions] == ["agent-v1", "agent-v1", "agent-v2", "agent-v1"]
    assert json.loads((tmp_path / ACTIVE_NAME).read_text())["active"] == "agent-v1"


def test_an_adapter_of_another_base_model_is_refused(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    registry.commit(staged(registry), LINEAGE)
    assert registry.check_base("agent-v1", "a" * 64).name == "agent-v1"
    with pytest.raises(RegistryError, match="trained on another base model .*train one on this base"):
        registry.check_base("agent-v1", "c" * 64)


def test_a_scaled_version_keeps_the_weights_and_scales_lora_alpha(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path, "agent")
    folder = staged(registry)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16}))
    registry.commit(folder, {**LINEAGE, "metrics": {"steps": 70}})
    half = registry.scaled("agent-v1", 0.5)
    assert (half.name, half.parent, half.dataset) == ("agent-v2", "agent-v1", "/data/rft-1")
    assert half.metrics == {"steps": 70, "scaled_from": "agent-v1", "scale": 0.5}
    config = json.loads((registry.path("agent-v2") / "adapter_config.json").read_text())
    assert config == {"peft_type": "LORA", "r": 8, "lora_alpha": 8.0}
    weights = [
        (registry.path(n) / "adapter_model.safetensors").read_bytes() for n in ("agent-v1", "agent-v2")
    ]
    assert weights[0] == weights[1]
    with pytest.raises(RegistryError, match="give a factor above 0"):
        registry.scaled("agent-v1", 0)
    with pytest.raises(RegistryError, match="no adapter 'agent-v7'"):
        registry.scaled("agent-v7", 0.5)
