"""The gateway in front of the real embedded model: from a sandbox, and as `agentevo serve`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest

from agentevo.config import AgentevoConfig
from agentevo.gateway import Gateway, TrajectoryRecorder
from agentevo.sandbox import Sandbox
from agentevo.serving.backbone import open_backend
from tests.gateway.conftest import CALL_SCRIPT

pytestmark = pytest.mark.model  # the embedded model in process


def test_sandbox_gets_an_answer_from_the_embedded_model(tmp_path, sandbox_image):
    with (
        open_backend(AgentevoConfig()) as backend,
        Gateway(backend, run_dir=tmp_path, run_id="run-local") as gateway,
    ):
        access = gateway.open_episode(agent_id="seed", task_id="capital", episode_id="1")
        with Sandbox.start(gateway_socket=gateway.socket_path, env=access.env()) as sb:
            sb.write_file("/workspace/call.py", CALL_SCRIPT)
            result = sb.exec(
                "python call.py 'What is the capital of France? Answer in one word.'", timeout=300
            )
    assert result.exit_code == 0, result.output
    status, tokens, text = result.output.strip().split(" ", 2)
    assert status == "OK" and int(tokens) > 0 and text.strip("'\"")
    [record] = TrajectoryRecorder(tmp_path).read()
    assert record.task_id == "capital" and record.model == "smollm2-135m-instruct"
    assert record.completion_tokens > 0 and record.response["choices"][0]["message"]["content"]


def test_serve_prints_a_working_url(tmp_path):
    env = {
        "AGENTEVO_ARCHIVES_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "HOME": str(__import__("pathlib").Path.home()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentevo", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        reply = httpx.post(
            f"{url}/chat/completions",
            json={"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 12},
            timeout=300,
        )
        assert reply.status_code == 200
        body = reply.json()
        assert body["choices"][0]["message"]["content"] and body["usage"]["completion_tokens"] > 0
        assert httpx.get(f"{url}/models", timeout=10).json()["data"][0]["id"] == "smollm2-135m-instruct"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 130  # serving ends only when it is interrupted
    [calls] = list(tmp_path.glob("*/llm_calls.jsonl"))
    assert json.loads(calls.read_text().splitlines()[0])["status"] == 200
