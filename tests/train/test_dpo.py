"""DPO trains for real: preference pairs from a recorded run -> a LoRA adapter on the embedded model through TRL's
DPOTrainer (the reference is the base with the adapter disabled), a couple of steps on one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from agentevo.config import AgentevoConfig
from agentevo.llm.model_store import ensure_embedded_model
from agentevo.runs import RunDir
from agentevo.tasks.model import Split
from agentevo.train import AdapterRegistry, Recipe, TrainConfig, build_dataset, train_adapter
from agentevo.train.datasets import read_rows
from tests.llm.conftest import SECRET, TRAIN_QUESTIONS
from tests.train.recorded import record_answer, task_ids

pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]  # LoRA training on the embedded model


def test_a_dpo_adapter_is_trained_on_the_embedded_model(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "archives", "pairs")
    for task, question in zip(task_ids(Split.train, 4), TRAIN_QUESTIONS, strict=False):
        record_answer(run, task, 0, question, SECRET, True)
        record_answer(run, task, 1, question, "I am not sure.", False)
    config = TrainConfig(
        adapters_dir=tmp_path / "adapters", max_steps=2, batch_size=2, max_length=64, learning_rate=1e-3,
        target_modules=["q_proj", "v_proj"], save_steps=100, threads=1,
    )  # fmt: skip
    dataset = build_dataset([run.path], Recipe.dpo, tmp_path / "data", config)
    pairs = read_rows(dataset)
    assert len(pairs) == 4 and {p["chosen"][0]["content"] for p in pairs} == {SECRET}
    model_dir = ensure_embedded_model(AgentevoConfig().cache_dir)
    registry = AdapterRegistry(config.adapters_dir)
    lineage = train_adapter(dataset, model_dir, registry, config)
    assert lineage.recipe == "dpo" and lineage.metrics["steps"] == 2 and lineage.metrics["rows"] == 4
    assert lineage.metrics["train_loss"] is not None and lineage.metrics["tokens"] > 0
    weights = load_file(registry.path(lineage.name) / "adapter_model.safetensors")
    moved = [name for name, tensor in weights.items() if "lora_B" in name and tensor.abs().max() > 0]
    assert moved, "LoRA's B matrices start at zero: DPO's steps moved none of them"
    print(f"DPO, 2 steps: {lineage.metrics}")
