"""The gateway under backbone faults: retries within budget, fast failure of calls in flight, a clean close.

The upstream is a real process on loopback (``tests/faults/upstream.py``), killed with SIGKILL and started again.
Where a test is about the gateway's control flow it uses a scripted backend and a scripted health signal, and
says so; the real watchdog on a real server is in test_watchdog.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from agentevo.gateway import Fault, Gateway, HTTPBackend, TrajectoryRecorder
from agentevo.gateway.retry import RequestRetry
from tests.faults.conftest import ROOT, UpstreamProcess, wait_until
from tests.gateway.test_gateway import local_client

ASK = {"messages": [{"role": "user", "content": "write add"}]}


def test_upstream_killed_mid_call_and_brought_back(tmp_path, upstream_process: UpstreamProcess):
    upstream_process.start(die_at=2)  # the second call kills it, with the call in flight

    def bring_back() -> None:
        wait_until(lambda: upstream_process.dead, 30, "the upstream to die")
        time.sleep(0.5)  # a moment of connection refused, as while a server restarts
        upstream_process.start()

    backend = HTTPBackend(upstream_process.url, "upstream", timeout=10)
    with Gateway(
        backend, run_dir=tmp_path, run_id="r", retry=RequestRetry(retries=6, first_wait=0.2)
    ) as gateway:
        access = gateway.open_episode(episode_id="e1")
        with local_client(gateway, access.token) as http:
            assert http.post("/v1/chat/completions", json=ASK).status_code == 200
            restarter = threading.Thread(target=bring_back)
            restarter.start()
            answer = http.post("/v1/chat/completions", json=ASK)
            restarter.join(30)
        assert answer.status_code == 200, answer.text  # the agent never saw the fault
        assert access.fault is None and access.usage.retries >= 1 and access.usage.calls == 2
    first, second = TrajectoryRecorder(tmp_path).read()
    assert first.retried == [] and second.status == 200
    assert second.retried and all(r.startswith("backbone_unreachable: ") for r in second.retried)
    ledger = json.loads((tmp_path / "ledger.json").read_text())
    assert ledger["run"]["retries"] == len(second.retried) and ledger["run"]["infrastructure_errors"] == 0


def test_upstream_stopped_for_good(tmp_path, upstream_process: UpstreamProcess):
    upstream_process.start()
    backend = HTTPBackend(upstream_process.url, "upstream", timeout=10)
    with Gateway(
        backend, run_dir=tmp_path, run_id="r", retry=RequestRetry(retries=2, first_wait=0.1)
    ) as gateway:
        access = gateway.open_episode(episode_id="e1")
        upstream_process.kill()
        started = time.monotonic()
        with local_client(gateway, access.token) as http:
            answer = http.post("/v1/chat/completions", json=ASK)
        waited = time.monotonic() - started
    assert answer.status_code == 502 and answer.headers["x-should-retry"] == "false"
    error = answer.json()["error"]
    assert (
        error["type"] == "backbone_unreachable"
        and f"backbone unreachable at {upstream_process.url}" in error["message"]
    )
    assert waited < 5  # two quick retries, not minutes
    assert access.fault is Fault.backbone_unreachable and access.fault.infrastructure
    assert access.usage.infrastructure_errors == 1 and access.usage.retries == 2
    [record] = TrajectoryRecorder(tmp_path).read()
    assert record.status == 502 and len(record.retried) == 2


class ScriptedHealth:
    """A scripted watchdog (control flow only): the test says when the backbone faults and when it is back."""

    def __init__(self) -> None:
        self.ready, self.failure, self.restarts, self.restart_seconds = True, None, 0, []
        self.listeners: list[Callable[[], None]] = []

    def on_fault(self, callback: Callable[[], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def fault(self) -> None:
        self.ready = False
        for callback in self.listeners:
            callback()


class HangsOnceBackend:
    """A scripted backend (control flow only): its first call never answers, like a hung engine; later calls do."""

    model = "scripted"

    def __init__(self, health: ScriptedHealth | None) -> None:
        self.health = health
        self.calls = 0

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(3600)
        message = {"role": "assistant", "content": "ok"}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}  # fmt: skip

    async def models(self) -> list[str]:
        return [self.model]

    async def aclose(self) -> None:
        return None


def test_call_in_flight_fails_fast_when_the_backbone_faults_then_is_retried(tmp_path):
    health = ScriptedHealth()
    backend = HangsOnceBackend(health)

    def fault_then_recover() -> None:
        time.sleep(0.5)
        health.fault()  # the watchdog found the backbone dead: the hung call must not wait for its timeout
        time.sleep(0.5)
        health.ready = True

    with Gateway(backend, run_dir=tmp_path, run_id="r") as gateway:
        access = gateway.open_episode(episode_id="e1")
        threading.Thread(target=fault_then_recover).start()
        started = time.monotonic()
        with local_client(gateway, access.token) as http:
            answer = http.post("/v1/chat/completions", json=ASK)
        took = time.monotonic() - started
    assert answer.status_code == 200 and backend.calls == 2
    assert took < 3  # fault at 0.5 s, back at 1 s: answered by the retry, not after an hour
    [record] = TrajectoryRecorder(tmp_path).read()
    assert len(record.retried) == 1 and record.retried[0].startswith("backbone_restarted: ")
    assert access.usage.retries == 1 and access.fault is None
    assert health.listeners == []  # the closed gateway stopped listening to the backbone it shares


def test_a_backbone_given_up_on_is_answered_at_once_with_the_reason(tmp_path):
    health = ScriptedHealth()
    health.ready, health.failure = False, "the llama.cpp backbone failed and was not brought back: gone"
    backend = HangsOnceBackend(health)
    with Gateway(backend, run_dir=tmp_path, run_id="r") as gateway:
        access = gateway.open_episode()
        with local_client(gateway, access.token) as http:
            answer = http.post("/v1/chat/completions", json=ASK)
    assert answer.status_code == 503 and answer.json()["error"]["type"] == "backbone_down"
    assert "was not brought back" in answer.json()["error"]["message"] and backend.calls == 0
    assert access.fault is Fault.backbone_down


CLOSE_WHILE_IN_FLIGHT = """
import threading, time, httpx
from pathlib import Path
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.llm.scripted import ScriptedChatModel
model = ScriptedChatModel(replies=["late"], delay=4.0)  # scripted: a slow answer that outlives the gateway
gateway = Gateway(ChatModelBackend(model, "s"), run_dir=Path({run_dir!r}), run_id="r").start()
token = gateway.open_episode().token
answers = []
def call():
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(gateway.socket_path)), timeout=30) as http:
        answers.append(http.post("http://gateway/v1/chat/completions", headers={{"Authorization": "Bearer " + token}},
                                 json={{"messages": [{{"role": "user", "content": "x"}}]}}))
caller = threading.Thread(target=call)
caller.start()
time.sleep(0.5)
started = time.monotonic()
gateway.stop()
print("stop took", round(time.monotonic() - started, 2))
caller.join(10)
print("answer", answers[0].status_code, answers[0].json()["error"]["type"])
"""


@pytest.mark.slow
def test_closing_with_a_call_in_flight_cuts_it_off_without_a_traceback(tmp_path):
    script = CLOSE_WHILE_IN_FLIGHT.format(run_dir=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "cannot schedule new futures" not in done.stderr, done.stderr
    assert "answer 503 gateway_closing" in done.stdout
    took = float(done.stdout.split("stop took ")[1].split()[0])
    assert took < 4  # drained for 2 s, then cut off; not the 4 s the answer would have taken
    [record] = TrajectoryRecorder(tmp_path).read()
    assert record.status == 503 and "gateway is closing" in (record.error or "")
