"""A supervised server dies with its owner: llama.cpp's ``llama-server`` after its owner's SIGKILL. No mocks.

The owner starts the server from a worker thread that then ends, as the watchdog's restarts do: the server must
outlive that thread (``PR_SET_PDEATHSIG`` would have killed it there) and die with the owner process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.llm.orphans import sigkill, tethers, wait_gone

pytestmark = pytest.mark.model  # a llama.cpp server in a child process

ROOT = Path(__file__).resolve().parents[2]

OWNER = """
import threading, time
from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME
from agentevo.llm.llamacpp_server import LlamaCppServer
from tests.llm.conftest import free_port, llamacpp_test_config
server = LlamaCppServer(llamacpp_test_config(free_port()), EMBEDDED_MODEL_NAME, AgentevoConfig().cache_dir)
starter = threading.Thread(target=server.start)
starter.start()
starter.join()
print(server.pid, server.root_url, flush=True)
time.sleep(600)
"""


def test_llamacpp_server_outlives_its_starting_thread_and_dies_with_its_owner():
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = owner.stdout.readline().split()
    if len(line) != 2:
        owner.kill()
        raise AssertionError(f"the owner did not start llama.cpp:\n{owner.communicate()[1][-3000:]}")
    pid, url = int(line[0]), line[1]
    time.sleep(1.0)  # the thread that spawned it has ended
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200 and len(tethers(pid)) == 1

    sigkill(owner)
    gone = wait_gone(pid)
    print(f"llama.cpp server gone {gone:.2f} s after its owner's SIGKILL")
