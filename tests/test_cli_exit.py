"""The commands that run the in-process model exit with the code they mean (issue 28), run as a user would: the
console script, as a subprocess, on the real embedded model, Docker sandboxes and suites.

The abort these guard against ("terminate called without an active exception", exit 134) came from a generation
still running in a gateway thread when the interpreter finalized; the tests leave one in flight on purpose (an
agent that asks for a long answer and leaves, as one whose client timed out does, or a client that gives up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder

ROOT = Path(__file__).resolve().parents[1]
AGENTEVO = Path(sys.executable).parent / "agentevo"  # the console script of this environment
LEAP = ROOT / "tests" / "tasks" / "data" / "exercism" / "leap"  # one task, in the test split
ABORT = "terminate called"
LONG_ANSWER = 400  # tokens asked for: still being generated when the command ends, unless it stops them
COUNT = "Count from 1 to 300, one number per line."  # a prompt the model answers at length

LEAVING_AGENT = f"""
import json, os, socket, time
from agentevo import contract


def ask(max_tokens):
    body = json.dumps({{"messages": [{{"role": "user", "content": {COUNT!r}}}], "max_tokens": max_tokens}})
    head = (
        "POST /v1/chat/completions HTTP/1.1\\r\\nHost: gateway\\r\\nConnection: close\\r\\n"
        f"Content-Type: application/json\\r\\nContent-Length: {{len(body)}}\\r\\n"
        f"Authorization: Bearer {{os.environ[contract.TOKEN_ENV]}}\\r\\n\\r\\n"
    )
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(os.environ[contract.SOCKET_ENV])
    sock.sendall((head + body).encode())
    return sock


args = contract.parse_args()
with ask(1) as first:  # the weights load on a first call: wait for its answer
    while first.recv(65536):
        pass
with ask({LONG_ANSWER}):
    time.sleep(2)  # the model is generating; this agent leaves without the answer
print(contract.result_line(args.episode, "stopped", 2, 0))
"""


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The user's environment, with the run folders under ``tmp_path`` and the in-process backbone."""
    return dict(
        os.environ,
        AGENTEVO_ARCHIVES_DIR=str(tmp_path / "archives"),
        AGENTEVO_LLM__BACKBONE="local",
        AGENTEVO_LLM__MAX_TOKENS=str(LONG_ANSWER),
    )


@pytest.fixture
def leaving_agent(tmp_path) -> Path:
    """An agent package that asks the model for a long answer and leaves before it comes."""
    folder = tmp_path / "leaving-agent"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "run.py").write_text(LEAVING_AGENT)
    return folder


def agentevo(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AGENTEVO), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )


def run_dirs(env: dict[str, str]) -> list[Path]:
    archives = Path(env["AGENTEVO_ARCHIVES_DIR"])
    return sorted(archives.iterdir()) if archives.is_dir() else []


def cut_off_calls(run_dir: Path) -> list[CallRecord]:
    """The long answers the gateway was still waiting for when it closed (it answers those 503)."""
    calls = TrajectoryRecorder(run_dir).read()
    return [c for c in calls if c.request.get("max_tokens") == LONG_ANSWER and c.status == 503]


def test_run_with_parallel_in_process_episodes_exits_0(sandbox_image, env, leaving_agent):
    """Two episodes at once on the in-process model, each leaving a long generation behind: exit 0, no abort."""
    done = agentevo(
        "run", "--agent", str(leaving_agent), "--suite", "builtin", "--split", "test", "--limit", "2",
        "--parallel", "2", "--max-steps", "2", "--backbone", "local", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert ABORT not in done.stderr and "Traceback" not in done.stderr
    [run_dir] = run_dirs(env)
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 2
    assert cut_off_calls(run_dir), "no call was left in flight: the test did not exercise the exit it guards"


def test_a_named_task_runs_whatever_its_split(web_image, env, leaving_agent):
    """click-button is in the train split; named, it runs under the default --split test, and a line says so."""
    done = agentevo(
        "run", "--agent", str(leaving_agent), "--suite", "miniwob:click-button", "--max-steps", "1", env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert ABORT not in done.stderr
    assert (
        "running the named tasks whatever their split: miniwob/click-button (train) is not in the test split"
        in " ".join(done.stderr.split())
    )
    [run_dir] = run_dirs(env)
    [row] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert row["task_id"] == "miniwob/click-button"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            ["run", "--suite", f"exercism:{LEAP}", "--split", "train"],
            "has no task in the train split (its tasks by split: 1 test); use --split test or --split all",
        ),
        (["run", "--suite", "builtin", "--limit", "0"], "--limit 0 selects no task"),
        (
            ["evolve", "--suite", f"exercism:{LEAP}"],
            "has no task in the train split (its tasks by split: 1 test); use --split test or --split all",
        ),
    ],
)
def test_a_selection_of_no_task_is_one_line_and_exit_1_before_a_run_folder(env, args, reason):
    done = agentevo(*args, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and reason in line
    assert run_dirs(env) == []


class Watched:
    """A command started in the background, its stderr collected by a thread as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(AGENTEVO), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.err: list[str] = []
        self._reader = threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_for(self, seen: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not seen():
            assert self.proc.poll() is None, f"ended with {self.proc.returncode} before {what}: {self.stderr}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:g} s: {self.stderr[-3000:]}"
            time.sleep(0.5)

    def terminate(self, timeout: float) -> int:
        """SIGTERM, then the exit code (the process is killed, and the test fails, if it does not end in time)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(
                f"still running {timeout:g} s after SIGTERM: {self.stderr[-3000:]}"
            ) from None
        self._reader.join(timeout=10)
        return code


@pytest.mark.model
def test_serve_stopped_by_sigterm_mid_generation(env):
    """A client gives up on a long answer; SIGTERM while it is still generating: exit 130, no abort."""
    serving = Watched("serve", "--port", "0", env=env)
    try:
        url = serving.proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), serving.stderr
        warm = {
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1,
        }  # the weights load on a first call
        assert httpx.post(f"{url}/chat/completions", json=warm, timeout=300).status_code == 200
        count = {"messages": [{"role": "user", "content": COUNT}], "max_tokens": LONG_ANSWER}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json=count, timeout=httpx.Timeout(30, read=3))
        started = time.monotonic()
        code = serving.terminate(timeout=60)
    finally:
        serving.proc.kill()
    assert code == 130, serving.stderr[-3000:]
    assert ABORT not in serving.stderr and "Traceback" not in serving.stderr
    assert "interrupted: stopped serving" in serving.stderr
    assert time.monotonic() - started < 30  # the generation was stopped, not waited for to its end


def test_evolve_stopped_by_sigterm_mid_episode(sandbox_image, env):
    """The smallest evolution (the seed, gated and scored on one task); SIGTERM once its episode has called the
    model: the running job finishes, nothing new starts, exit 130 with the resume hint, no abort."""
    env = dict(
        env,
        AGENTEVO_LLM__MAX_TOKENS="48",
        AGENTEVO_EVOLVE__SAFETY="off",
        AGENTEVO_EVOLVE__STAGES='[{"name": "small", "tasks": 1}]',
        AGENTEVO_EVOLVE__MAX_STEPS="2",
        AGENTEVO_EVOLVE__WORKERS="1",
    )
    archives = Path(env["AGENTEVO_ARCHIVES_DIR"])
    evolving = Watched("evolve", "--max-nodes", "1", "--backbone", "local", env=env)
    try:
        evolving.wait_for(lambda: any(archives.glob("*/**/llm_calls.jsonl")), "model call", timeout=600)
        code = evolving.terminate(timeout=300)
    finally:
        evolving.proc.kill()
    stderr = " ".join(evolving.stderr.split())
    assert code == 130, stderr[-3000:]
    assert ABORT not in stderr and "Traceback" not in stderr
    assert "stopped: interrupted" in stderr and "agentevo evolve --resume" in stderr
