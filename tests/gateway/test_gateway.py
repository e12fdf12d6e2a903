"""The gateway: sandboxes reach the LLM only through it, metered, recorded once, never holding a key."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from agentevo.gateway import Budget, CallRecord, ChatModelBackend, Gateway, HTTPBackend, TrajectoryRecorder
from agentevo.llm.scripted import ScriptedChatModel
from agentevo.sandbox import Sandbox
from tests.gateway.conftest import CALL_SCRIPT, UPSTREAM_KEY, Upstream


def in_sandbox(gateway: Gateway, access, *prompts: str) -> list[str]:
    with Sandbox.start(gateway_socket=gateway.socket_path, env=access.env()) as sb:
        sb.write_file("/workspace/call.py", CALL_SCRIPT)
        result = sb.exec("python call.py " + " ".join(f"'{p}'" for p in prompts), timeout=300)
        env = sb.exec("env; cat /proc/1/environ | tr '\\0' '\\n'").output
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines() + ["--env--", env]


def local_client(gateway: Gateway, token: str = "") -> httpx.Client:
    transport = httpx.HTTPTransport(uds=str(gateway.socket_path))
    return httpx.Client(
        transport=transport,
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_an_http_backbone_gets_the_configured_temperature_and_token_cap(upstream):
    """A server's own default temperature is not greedy (llama-server 0.8, OpenAI 1.0): a request that names none
    is sent ``llm.temperature``, as an in-process model would use it; ``llm.max_tokens`` caps what is asked."""
    backend = HTTPBackend(upstream.url, "m", api_key=UPSTREAM_KEY, temperature=0.0, max_tokens=64)
    asked = [
        {"temperature": None},
        {"temperature": 0.7, "max_tokens": 500},
        {"max_tokens": 16},
        {"max_completion_tokens": 900},
    ]

    async def send_all() -> None:
        for extra in asked:
            await backend.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra})
        await backend.aclose()

    asyncio.run(send_all())
    sent = [
        (b.get("temperature"), b.get("max_tokens"), b.get("max_completion_tokens"))
        for b in upstream.seen_bodies
    ]
    assert sent == [(0.0, 64, None), (0.7, 64, None), (0.0, 16, None), (0.0, None, 64)]


class _CutOff(ScriptedChatModel):
    """Scripted (the answer is fixed): raises as ChatOpenAI does for a schema-held answer cut off by max_tokens."""

    def _generate(self, *args, **kwargs):
        completion = ChatCompletion.model_validate(
            {
                "id": "c", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": '{"answer": "ye'}}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
            }
        )  # fmt: skip
        raise openai.LengthFinishReasonError(completion=completion)


def test_an_answer_cut_off_by_its_token_limit_is_a_reply_named_truncated_not_a_502():
    body = {"model": "m", "messages": [{"role": "user", "content": "yes or no?"}], "response_format": {
        "type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}}  # fmt: skip
    reply = asyncio.run(ChatModelBackend(_CutOff(replies=["unused"]), "m").chat(body))
    [choice] = reply["choices"]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == '{"answer": "ye'
    assert reply["usage"]["completion_tokens"] == 4


def test_sandbox_reaches_backbone_through_socket_without_the_key(
    tmp_path, upstream, monkeypatch, sandbox_image
):
    monkeypatch.setenv("UPSTREAM_API_KEY", UPSTREAM_KEY)
    backend = HTTPBackend(upstream.url, "upstream-model", api_key=UPSTREAM_KEY)
    with Gateway(backend, run_dir=tmp_path, run_id="run-1") as gateway:
        access = gateway.open_episode(agent_id="seed", task_id="task-7", episode_id="ep-1")
        lines = in_sandbox(gateway, access, "hello")
    assert lines[0] == "OK 9 'upstream saw 1 message(s)'"
    env = "\n".join(lines[lines.index("--env--") :])
    assert UPSTREAM_KEY not in env and "UPSTREAM_API_KEY" not in env
    assert upstream.seen_keys == [f"Bearer {UPSTREAM_KEY}"]  # the gateway added it on the way out
    [record] = TrajectoryRecorder(tmp_path).read()
    assert (record.run_id, record.agent_id, record.task_id, record.episode_id) == (
        "run-1",
        "seed",
        "task-7",
        "ep-1",
    )
    assert record.request["messages"][0]["content"] == "hello"
    assert record.response["choices"][0]["message"]["content"] == "upstream saw 1 message(s)"
    assert (record.prompt_tokens, record.completion_tokens, record.status) == (5, 4, 200)
    assert record.latency_ms > 0 and record.model == "upstream-model"
    ledger = json.loads((tmp_path / "ledger.json").read_text())
    assert ledger["run"]["calls"] == 1 and ledger["run"]["tokens"] == 9


def test_budget_overrun_is_a_clear_error_for_the_agent(tmp_path, sandbox_image):
    model = ScriptedChatModel(replies=["one two three"])  # scripted: this test is about budgets
    with Gateway(ChatModelBackend(model, "scripted"), run_dir=tmp_path, run_id="run-b") as gateway:
        access = gateway.open_episode(task_id="t", budget=Budget(max_calls=2))
        lines = in_sandbox(gateway, access, "a", "b", "c")
        assert access.usage.calls == 2
    assert lines[0].startswith("OK") and lines[1].startswith("OK")
    assert lines[2] == "ERR 429 episode budget exceeded: 2/2 calls used"
    records = TrajectoryRecorder(tmp_path).read()
    assert [r.status for r in records] == [200, 200, 429]


def test_token_budget_and_run_budget(tmp_path):
    model = ScriptedChatModel(replies=["a b c d e"])  # scripted: this test is about budgets
    with Gateway(
        ChatModelBackend(model, "scripted"), run_dir=tmp_path, run_id="r", run_budget=Budget(max_calls=3)
    ) as gateway:
        first = gateway.open_episode(budget=Budget(max_tokens=8))
        second = gateway.open_episode()
        body = {"messages": [{"role": "user", "content": "one two three four"}]}
        with local_client(gateway, first.token) as client:
            assert client.post("/v1/chat/completions", json=body).status_code == 200  # 4 + 5 tokens
            refused = client.post("/v1/chat/completions", json=body)
        assert (
            refused.status_code == 429
            and "episode budget exceeded: 9/8 tokens" in refused.json()["error"]["message"]
        )
        assert refused.headers["x-should-retry"] == "false"
        with local_client(gateway, second.token) as client:
            assert [client.post("/v1/chat/completions", json=body).status_code for _ in range(3)] == [
                200,
                200,
                429,
            ]
            assert "run budget exceeded: 3/3 calls" in client.post("/v1/chat/completions", json=body).text


def test_unknown_token_is_refused(tmp_path):
    with Gateway(
        ChatModelBackend(ScriptedChatModel(replies=["x"]), "s"), run_dir=tmp_path, run_id="r"
    ) as gateway:
        access = gateway.open_episode()
        with local_client(gateway, "forged") as client:
            assert (
                client.post(
                    "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
                ).status_code
                == 401
            )
        gateway.close_episode(access)
        with local_client(gateway, access.token) as client:  # a closed episode's token is dead
            assert client.get("/v1/models").status_code == 401


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_bad_input_gives_clear_errors_and_the_gateway_stays_up(tmp_path):
    dead = HTTPBackend(f"http://127.0.0.1:{_free_port()}/v1", "m", timeout=5)
    with Gateway(dead, run_dir=tmp_path, run_id="r", max_request_bytes=4096) as gateway:
        token = gateway.open_episode().token
        good = {"messages": [{"role": "user", "content": "hi"}]}
        with local_client(gateway, token) as client:
            unreachable = client.post("/v1/chat/completions", json=good)
            assert (
                unreachable.status_code == 502
                and "backbone unreachable at http://127.0.0.1" in unreachable.text
            )
            assert client.post("/v1/chat/completions", content=b"{not json").status_code == 400
            assert "non-empty `messages`" in client.post("/v1/chat/completions", json={"model": "m"}).text
            huge = client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 10_000}]}
            )
            assert huge.status_code == 413 and "exceeds the gateway limit of 4096" in huge.text
            assert client.get("/health").json()["ok"] is True
    records = TrajectoryRecorder(tmp_path).read()
    assert len(records) == 1 and records[0].status == 502  # malformed requests never reached the backbone


@pytest.mark.slow
def test_backbone_timeout(tmp_path):
    with Upstream(delay=3) as slow:
        backend = HTTPBackend(slow.url, "m", api_key=UPSTREAM_KEY, timeout=0.5)
        with (
            Gateway(backend, run_dir=tmp_path, run_id="r") as gateway,
            local_client(gateway, gateway.open_episode().token) as client,
        ):
            answer = client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
            )
            assert answer.status_code == 504 and "did not answer within 0.5 s" in answer.text
            assert client.get("/health").status_code == 200
    [record] = TrajectoryRecorder(tmp_path).read()
    assert record.status == 504 and record.error


def test_concurrent_calls_are_not_serialised(tmp_path):
    model = ScriptedChatModel(replies=["ok"], delay=0.5)  # scripted: measures the gateway, not a model
    with Gateway(ChatModelBackend(model, "s"), run_dir=tmp_path, run_id="r") as gateway:
        tokens = [gateway.open_episode(episode_id=f"e{i}").token for i in range(8)]

        def call(token: str) -> int:
            with local_client(gateway, token) as client:
                return client.post(
                    "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
                ).status_code

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(call, tokens)) == [200] * 8
    assert model.in_flight_peak >= 6  # all were in the backbone at once, none queued behind another
    records = TrajectoryRecorder(tmp_path).read()
    assert sorted(r.episode_id for r in records) == [f"e{i}" for i in range(8)]
    assert len({r.call_id for r in records}) == 8


def _append_many(path: str, worker: int) -> None:
    recorder = TrajectoryRecorder(Path(path))
    for i in range(200):
        recorder.append(
            CallRecord(run_id="r", episode_id=f"{worker}-{i}", request={"messages": ["x" * 3000]})
        )


@pytest.mark.slow
def test_recorder_is_safe_across_processes(tmp_path):
    workers = [
        multiprocessing.get_context("spawn").Process(target=_append_many, args=(str(tmp_path), w))
        for w in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    records = TrajectoryRecorder(tmp_path).read()
    assert len(records) == 800 and len({r.episode_id for r in records}) == 800
