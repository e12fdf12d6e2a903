"""The `llamacpp` backbone against a real llama-server serving the embedded model. No mocks.

One server for the module (the `llamacpp_server` fixture, two slots); others start on their own free ports
where a test needs its own (they are ready in about a second).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from agentevo.gateway import Gateway
from agentevo.gateway.backends import ChatModelBackend
from agentevo.llm.backbone import make_chat_model, resolve_backbone
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LlamaCppBackboneConfig, LLMConfig
from agentevo.llm.fenced_tools import ERROR_KEY
from agentevo.llm.llamacpp_server import LlamaCppError, LlamaCppServer, install_dir, llamacpp_installed
from agentevo.llm.schema_tools import SchemaToolModel
from tests.llm.conftest import PROBES, SECRET, free_port, group_alive, llamacpp_test_config

# A cold machine builds llama.cpp (about 10 minutes) inside the first fixture; `make test` does it beforehand.
pytestmark = [pytest.mark.model, pytest.mark.timeout(900)]  # the llama.cpp server


def greedy(server: LlamaCppServer, prompt: str, model: str | None = None, max_tokens: int = 24) -> str:
    reply = server.chat_model(model, temperature=0.0, max_tokens=max_tokens, max_retries=0).invoke(prompt)
    return reply.content


# ---------------------------------------------------------------------------------------------------- chat


def test_chat_through_the_llamacpp_server(llamacpp_server: LlamaCppServer) -> None:
    assert llamacpp_server.owned and llamacpp_server.health()
    assert llamacpp_server.list_models() == [EMBEDDED_MODEL_NAME]
    assert llamacpp_server.gguf is not None and llamacpp_server.gguf.name.endswith("Q4_1.gguf")
    assert llamacpp_server.startup_seconds is not None and llamacpp_server.startup_seconds < 30

    t0 = time.monotonic()
    reply = llamacpp_server.chat_model(max_tokens=48).invoke(
        "What is the capital of France? Answer in one sentence."
    )
    elapsed = time.monotonic() - t0

    assert "Paris" in reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    print(
        f"llama.cpp startup {llamacpp_server.startup_seconds:.1f} s; {usage['output_tokens']} tokens in {elapsed:.2f} s"
    )


def test_parallel_slots_answer_concurrent_requests_alike(llamacpp_server: LlamaCppServer) -> None:
    prompts = ["Name a fruit.", "Name a color.", "Name a fruit.", "Name a color."]
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda p: greedy(llamacpp_server, p, max_tokens=16), prompts))
    assert all(replies)
    assert (
        replies[0] == replies[2] and replies[1] == replies[3]
    )  # greedy: the slot does not change the answer


COPY_PROMPT = "Copy this code exactly:\n" + "".join(
    f"def op{i}(a, b):\n    return a * {i} + b\n\n" for i in range(6)
)


def copy_reply(server: LlamaCppServer) -> dict:
    """A greedy reply that repeats code from its prompt, with the server's timings (draft counts among them)."""
    body = {"messages": [{"role": "user", "content": COPY_PROMPT}], "max_tokens": 96, "temperature": 0}
    resp = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120)
    resp.raise_for_status()
    return resp.json()


def test_ngram_speculation_drafts_from_the_prompt_and_keeps_greedy_replies(
    llamacpp_server: LlamaCppServer, cache_dir: Path
) -> None:
    """On by default: drafted tokens are accepted when a reply copies its prompt, and the reply is the one a
    server without speculation gives."""
    assert llamacpp_server.config.speculative == "ngram-mod"
    fast = copy_reply(llamacpp_server)
    plain_server = LlamaCppServer(
        llamacpp_test_config(free_port(), speculative="none"), EMBEDDED_MODEL_NAME, cache_dir
    )
    plain_server.start()
    try:
        plain = copy_reply(plain_server)
    finally:
        plain_server.stop()
    assert fast["timings"]["draft_n_accepted"] > 0, fast["timings"]
    assert plain["timings"].get("draft_n", 0) == 0, plain["timings"]
    assert fast["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert "def op4(a, b):" in plain["choices"][0]["message"]["content"]


def test_backbone_from_config_reuses_the_server_and_calls_tools(
    llamacpp_server: LlamaCppServer, cache_dir: Path
) -> None:
    @tool("add")
    def add_briefly(a: int, b: int) -> int:
        """Add two integers."""  # this wording: the greedy reply to it is a fenced add call
        return a + b

    model = make_chat_model(LLMConfig(backbone="llamacpp", llamacpp=llamacpp_server.config), cache_dir)
    assert model.server.owned is False  # the session's server was reused, not a second one spawned
    reply = model.bind_tools([add_briefly]).invoke("Use the add tool to add 3 and 4.")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "add"
    assert reply.usage_metadata["output_tokens"] > 0


@tool
def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


ATTEMPTS = [
    "Use the add tool to add 3 and 4.",
    "What is 3 + 4? Use the add tool.",
    "Add 3 and 4 using the add tool.",
]


def test_real_model_tool_call_round_trip(llamacpp_server: LlamaCppServer, cache_dir: Path) -> None:
    """The real 135M model with its replies held to the tools' schema (as every backbone without native tool calls
    but with constrained decoding uses it, ``local`` included): call ``add``, get the result back, answer.

    Up to three greedy attempts with different phrasing must give at least one ``add`` call, and that call must
    complete a round trip.
    """
    model = make_chat_model(LLMConfig(backbone="llamacpp", llamacpp=llamacpp_server.config), cache_dir)
    bound = model.bind_tools([add])
    assert isinstance(bound, SchemaToolModel)
    tried = []
    for question in ATTEMPTS:
        history: list[BaseMessage] = [HumanMessage(content=question)]
        reply = bound.invoke(history, max_tokens=64)
        tried.append((question, reply.content, reply.tool_calls, reply.response_metadata.get(ERROR_KEY)))
        if reply.tool_calls and reply.tool_calls[0]["name"] == "add":
            break
    else:
        pytest.fail(f"no attempt produced an add call: {tried}")
    call = reply.tool_calls[0]
    assert reply.usage_metadata["output_tokens"] > 0
    result = add.invoke(call)  # what LangGraph's ToolNode does: a ToolMessage answering the call id
    assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"]
    final = bound.invoke([*history, reply, result], max_tokens=32)
    assert isinstance(final, AIMessage)
    assert final.content.strip() or final.tool_calls
    # the second prompt carried the whole exchange as text the model can read
    assert final.usage_metadata["input_tokens"] > reply.usage_metadata["input_tokens"]


def test_llm_max_tokens_caps_what_a_request_asks_for(
    llamacpp_server: LlamaCppServer, cache_dir: Path
) -> None:
    config = LLMConfig(backbone="llamacpp", llamacpp=llamacpp_server.config, max_tokens=6)
    backend = ChatModelBackend(make_chat_model(config, cache_dir), EMBEDDED_MODEL_NAME)
    body = {"messages": [{"role": "user", "content": "Write a long story about a ship."}], "max_tokens": 200}
    reply = asyncio.run(backend.chat(body))
    assert 0 < reply["usage"]["completion_tokens"] <= 6, reply["usage"]


def test_auto_picks_llamacpp_on_a_machine_without_a_gpu_once_built(cache_dir: Path, tmp_path: Path) -> None:
    assert llamacpp_installed(LlamaCppBackboneConfig(), cache_dir)  # make test built it
    for concurrent in (False, True):
        assert resolve_backbone(LLMConfig(), cache_dir, concurrent=concurrent).backbone == "llamacpp"
    unbuilt = LLMConfig(llamacpp=LlamaCppBackboneConfig(install_dir=tmp_path / "none"))
    assert resolve_backbone(unbuilt, cache_dir).backbone == "local"
    assert (
        resolve_backbone(LLMConfig(backbone="vllm"), cache_dir).backbone == "vllm"
    )  # still an explicit option


# ---------------------------------------------------------------------------------------------------- lifecycle


def test_reuse_restart_and_clean_stop(llamacpp_server: LlamaCppServer, cache_dir: Path) -> None:
    # A second object on the session's port reuses the running server and leaves it running.
    t0 = time.monotonic()
    with LlamaCppServer(llamacpp_server.config, EMBEDDED_MODEL_NAME, cache_dir) as guest:
        assert time.monotonic() - t0 < 5 and not guest.owned and guest.pid is None
        assert greedy(guest, "Say hello.", max_tokens=8)
        with pytest.raises(LlamaCppError, match="started by another process.*another port"):
            guest.restart()
    assert llamacpp_server.health()

    # Another model name on that port is refused.
    with pytest.raises(LlamaCppError, match=r"serves \['smollm2-135m-instruct'\], not 'other-model'"):
        LlamaCppServer(llamacpp_server.config, "other-model", cache_dir).start()

    # An owned server restarts on its port and stops with its whole process group.
    own = LlamaCppServer(llamacpp_test_config(free_port()), EMBEDDED_MODEL_NAME, cache_dir)
    with own:
        first = own.pid
        own.restart()
        assert own.pid != first and not group_alive(first) and own.health()
        assert greedy(own, "Say hello.", max_tokens=8)
        pgid = own.pid
    assert not group_alive(pgid) and not own.health()


def test_a_server_dying_while_starting_reports_its_log_tail(cache_dir: Path, tmp_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("not a model")
    port = free_port()
    server = LlamaCppServer(llamacpp_test_config(port, model=not_gguf), EMBEDDED_MODEL_NAME, cache_dir)
    with pytest.raises(LlamaCppError) as caught:
        server.start(timeout=60)
    message = str(caught.value)
    assert "llama.cpp exited with code" in message and f"llamacpp-{port}.log" in message
    assert "gguf" in message.lower(), message  # llama.cpp's own reason, from the log tail
    assert server.pid is None and not server.owned

    with pytest.raises(LlamaCppError, match="llm.llamacpp.model .* is not a file"):
        LlamaCppServer(llamacpp_test_config(port, model=tmp_path / "absent.gguf"), "m", cache_dir).start()


def test_unreachable_and_squatted_ports_are_clear_errors(cache_dir: Path) -> None:
    server = LlamaCppServer(llamacpp_test_config(free_port()), EMBEDDED_MODEL_NAME, cache_dir)
    assert not server.health()
    with pytest.raises(LlamaCppError, match="no llama.cpp server answers at http://127.0.0.1:"):
        server.list_models()

    import http.server

    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=squatter.serve_forever, daemon=True)
    thread.start()
    try:
        port = squatter.server_address[1]
        taken = LlamaCppServer(llamacpp_test_config(port), EMBEDDED_MODEL_NAME, cache_dir)
        with pytest.raises(LlamaCppError, match=f"port 127.0.0.1:{port} is in use .*llm.llamacpp.port"):
            taken.start()
        assert taken.pid is None
    finally:
        squatter.shutdown()
        squatter.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------------- LoRA


def gateway_answer(url: str, model: str, prompt: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 24,
        "temperature": 0,
    }
    resp = httpx.post(f"{url}/chat/completions", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["message"]["content"]


def test_lora_adapter_switches_answers_through_the_gateway(
    trained_adapter: Path, cache_dir: Path, tmp_path: Path
) -> None:
    server = LlamaCppServer(llamacpp_test_config(free_port()), EMBEDDED_MODEL_NAME, cache_dir)
    with server:
        model = make_chat_model(
            LLMConfig(backbone="llamacpp", llamacpp=server.config, max_tokens=24), cache_dir
        )
        backend = ChatModelBackend(model, EMBEDDED_MODEL_NAME)
        gateway = Gateway(backend, run_dir=tmp_path, run_id="lora", open_access=True).start(
            host="127.0.0.1", port=0
        )
        try:
            base = [gateway_answer(gateway.url, EMBEDDED_MODEL_NAME, p) for p in PROBES]
            assert not any(SECRET in b for b in base), base

            t0 = time.monotonic()
            server.load_adapter("banana-v1", trained_adapter)  # convert (~10 s, cached) and restart (~1 s)
            load_s = time.monotonic() - t0
            assert server.adapters == {"banana-v1": trained_adapter.resolve()}
            assert server.list_models() == [EMBEDDED_MODEL_NAME, "banana-v1"]

            for _ in range(2):  # switch back and forth: every request gets its own adapter's answer
                tuned = [gateway_answer(gateway.url, "banana-v1", p) for p in PROBES]
                assert all(SECRET in t for t in tuned), tuned
                assert [gateway_answer(gateway.url, EMBEDDED_MODEL_NAME, p) for p in PROBES] == base

            unknown = httpx.post(
                f"{gateway.url}/chat/completions",
                json={"model": "banana-v9", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert unknown.status_code == 404 and "banana-v9" in unknown.text

            # Same name, same folder: a no-op. Same name, another folder: refused (versions need new names).
            pid = server.pid
            server.load_adapter("banana-v1", trained_adapter)
            assert server.pid == pid
            with pytest.raises(LlamaCppError, match="already loaded from .*new name"):
                server.load_adapter("banana-v1", shutil.copytree(trained_adapter, tmp_path / "v2"))

            server.unload_adapter("banana-v1")
            assert server.list_models() == [EMBEDDED_MODEL_NAME]
            assert [gateway_answer(gateway.url, EMBEDDED_MODEL_NAME, p) for p in PROBES] == base
            print(f"adapter load {load_s:.1f} s; base {base} -> adapter {tuned}")
        finally:
            gateway.stop()


def test_adapters_llamacpp_cannot_use_are_refused_and_the_server_stays_up(
    llamacpp_server: LlamaCppServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LlamaCppError, match="not a LoRA adapter folder"):
        llamacpp_server.load_adapter("x1", empty)
    no_weights = tmp_path / "noweights"
    no_weights.mkdir()
    (no_weights / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    with pytest.raises(LlamaCppError, match="no adapter_model.safetensors"):
        llamacpp_server.load_adapter("x2", no_weights)
    with pytest.raises(LlamaCppError, match="base model's name"):
        llamacpp_server.load_adapter(EMBEDDED_MODEL_NAME, no_weights)
    with pytest.raises(LlamaCppError, match="no adapter 'x2' was loaded"):
        llamacpp_server.unload_adapter("x2")
    assert llamacpp_server.health() and llamacpp_server.list_models() == [EMBEDDED_MODEL_NAME]


# ---------------------------------------------------------------------------------------------------- weights


def test_f16_weights_answer_exactly_as_the_transformers_model(cache_dir: Path, model_dir: Path) -> None:
    from agentevo.llm.local import LocalChatModel

    prompt = "Write a Python function that reverses a string."
    local = LocalChatModel(model_dir=model_dir, temperature=0.0, max_tokens=32).invoke(prompt).content
    config = llamacpp_test_config(free_port(), weights="f16", parallel=1)
    with LlamaCppServer(config, EMBEDDED_MODEL_NAME, cache_dir) as server:
        assert server.gguf is not None and server.gguf.name.endswith(".f16.gguf")
        assert server.gguf.parent == cache_dir / "models" / "gguf"
        assert greedy(server, prompt, max_tokens=32) == local
    assert (install_dir(config, cache_dir) / "bin" / "llama-server").is_file()
