"""examples/evolve_mbpp.py end to end with the real embedded model: `agentevo serve` (the llama.cpp backbone)
is the OpenAI-compatible endpoint, the example evolves the seed on MBPP (../shared/benchdata, read at run time)
with a tiny budget, and its run is then read back by `agentevo status` and `agentevo report`. Whatever the small
model produces is a correct outcome here; the test checks that every part ran and was recorded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentevo.archive import Archive
from agentevo.report import RunState, collect, run_status
from tests.conftest import BENCHDATA
from tests.llm.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CALL_TIMEOUT_S = 300  # a loaded 2-core machine answers a long prompt slowly; not a failure of the example


def _serve(tmp_path: Path, llama_port: int) -> tuple[subprocess.Popen[str], str]:
    env = dict(
        os.environ, AGENTEVO_LLM__BACKBONE="llamacpp", AGENTEVO_LLM__LLAMACPP__PORT=str(llama_port),
        AGENTEVO_LLM__TIMEOUT=str(CALL_TIMEOUT_S),
        AGENTEVO_ARCHIVES_DIR=str(tmp_path / "served"),
    )  # fmt: skip
    serve = subprocess.Popen(
        [sys.executable, "-m", "agentevo", "serve", "--port", "0"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = serve.stdout.readline().strip()  # its first line is the URL, once the backbone answers
    assert url.startswith("http://127.0.0.1:"), f"agentevo serve printed {url!r}"
    return serve, url


def _stop(serve: subprocess.Popen[str]) -> None:
    """SIGTERM stops serve as Ctrl-C does, and the llama-server it started with it."""
    serve.send_signal(signal.SIGTERM)
    serve.wait(60)


@pytest.mark.timeout(600)
def test_evolve_mbpp_example_against_agentevo_serve(tmp_path, sandbox_image):
    started = time.monotonic()
    llama_port = free_port()
    serve, url = _serve(tmp_path, llama_port)
    try:
        # No contract check or safety probes: fewer model episodes, so the budget fits the suite's time.
        (tmp_path / "agentevo.yaml").write_text(
            f"evolve: {{contract_check: false, safety: 'off', workers: 1}}\nllm: {{timeout: {CALL_TIMEOUT_S}}}\n"
        )
        env = dict(
            os.environ, OPENAI_API_KEY="unused-by-agentevo-serve", AGENTEVO_ARCHIVES_DIR=str(tmp_path / "runs"),
            AGENTEVO_CONFIG=str(tmp_path / "agentevo.yaml"),
        )  # fmt: skip
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "evolve_mbpp.py"), "--base-url", url, "--mbpp",
             str(BENCHDATA / "mbpp"), "--max-nodes", "2", "--tasks", "1", "--max-steps", "1"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=480,
        )  # fmt: skip
    finally:
        _stop(serve)
    with pytest.raises(ConnectionRefusedError):  # its llama-server went with it
        socket.create_connection(("127.0.0.1", llama_port), timeout=2).close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stopped: nodes; 2 nodes" in done.stdout, done.stdout
    run_dir = next((tmp_path / "runs").iterdir())
    with Archive.open(run_dir) as archive:
        seed, child = archive.nodes()
    assert seed.scores["small"].tasks == 1 and child.operator == "reflect" and child.gate is not None
    # Every call of the run went to the endpoint: the run's gateway recorded it, and so did `agentevo serve`.
    calls = [json.loads(line) for line in (run_dir / "llm_calls.jsonl").read_text().splitlines()]
    assert any(c["task_id"].startswith("mbpp/") for c in calls) and any(
        c["task_id"] == "evolve/reflect" for c in calls
    )
    served = list((tmp_path / "served").glob("*/llm_calls.jsonl"))
    assert served and len(served[0].read_text().splitlines()) >= len(calls)
    status = run_status(run_dir)
    assert status.state is RunState.finished and status.nodes == 2
    assert [n.id for n in collect(run_dir).nodes] == ["n0", "n1"]
    print(
        f"\n{done.stdout.strip()}\n{len(calls)} calls through {url}; {time.monotonic() - started:.0f} s in all"
    )
