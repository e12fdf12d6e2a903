"""An arm's adapter on the real llama.cpp backbone serving the embedded model, with a real LoRA adapter (trained
once, ~30 s, to answer everything with a secret word): ``adapter=none`` serves the base weights even while the
registry has an active adapter, ``adapter=active`` that one, ``adapter=NAME`` the version named."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from agentevo.compare import parse_arm
from agentevo.compare.run import open_arm_backend
from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME
from agentevo.llm.model_store import ensure_embedded_model
from agentevo.train.registry import ADAPTER_FILES, AdapterRegistry, Decision, base_fingerprint
from tests.llm.conftest import PROBES, SECRET, free_port, llamacpp_test_config, train_adapter

pytestmark = pytest.mark.model  # an adapter trained and served on llama.cpp


def _register(registry: AdapterRegistry, adapter: Path, model_dir: Path) -> str:
    staged = registry.staging()
    for name in ADAPTER_FILES:
        shutil.copy(adapter / name, staged / name)
    lineage = registry.commit(
        staged,
        {"base_model": str(model_dir), "base_model_sha256": base_fingerprint(model_dir), "recipe": "sft",
         "dataset": "secret", "data_sha256": "0" * 64},
    )  # fmt: skip
    return lineage.name


def _answer(arm: str, settings: AgentevoConfig) -> tuple[str, str]:
    """The model name the arm's backbone serves by default, and its answer to a probe it was not trained on."""
    chosen = parse_arm(arm)
    with open_arm_backend(chosen, chosen.settings(settings)) as backend:
        reply = asyncio.run(backend.chat({"messages": [{"role": "user", "content": PROBES[0]}]}))
    return backend.model, reply["choices"][0]["message"]["content"]


@pytest.mark.timeout(1800)  # 12 min measured at load average 15 (training and three server starts)
def test_arms_serve_the_adapter_they_name(tmp_path):
    model_dir = ensure_embedded_model(AgentevoConfig().cache_dir)
    registry = AdapterRegistry(tmp_path / "adapters", "secret")
    first = _register(registry, train_adapter(model_dir, tmp_path / "lora"), model_dir)
    second = _register(registry, registry.path(first), model_dir)  # the same weights, another version
    registry.decide(Decision(action="promote", candidate=first, previous=None, active=None, reason="test"))
    server = llamacpp_test_config(free_port(), weights="f16").model_dump()
    settings = AgentevoConfig(
        archives_dir=tmp_path, llm={"backbone": "llamacpp", "llamacpp": server, "max_tokens": 16},
        train={"adapters_dir": registry.root, "name": "secret"},
    )  # fmt: skip
    model, answer = _answer("base=seed", settings)
    assert model == EMBEDDED_MODEL_NAME and SECRET not in answer  # none: the base, though `first` is active
    assert _answer("live=seed,adapter=active", settings) == (first, SECRET)
    model, answer = _answer(f"named=seed,adapter={second}", settings)
    assert model == second and SECRET in answer
