"""Benchmark: decode speed of the two embedded models on llama.cpp, free and held to a grammar.

Run ``.venv/bin/python bench/grammar.py [--quick] [--threads 1,2] [--reps N] [--max-tokens N] [--json-out PATH]``.
Prints a table and the detail JSON; writes ``bench/results/grammar-<timestamp>.json``.

Why: gemma-3-270m's vocabulary (262,144 tokens) is 5.3x SmolLM2-135M's (49,152). Every decoded token ends in a
sampling step over the whole vocabulary, and a grammar (a JSON schema as ``response_format``) adds a check of
candidate tokens against it; when the model's first choice breaks the grammar, llama.cpp filters the full
vocabulary and samples again, so that cost grows with the vocabulary.

How: both models' ``llama-server`` run side by side, started by ``LlamaCppServer`` as agentevo starts them
(one slot, ``--threads`` threads, n-gram speculation off so every token is decoded by the model). For each
thread count, repetition and prompt, each model answers in each mode, in turn, so drift in the machine's load
hits every cell alike. Modes: ``free`` (plain text), ``json_object`` (any JSON object: llama.cpp's generic JSON
grammar) and ``json_schema`` (``agentevo.llm.structured.response_format`` of a small pydantic model, the request
``ask_structured`` sends). Greedy, the same ``max_tokens``. Decode speed is llama.cpp's own count: the sum of a
cell's ``timings.predicted_n`` over the sum of its ``predicted_ms`` (prompt processing excluded); per request,
ms per token. ``valid`` counts replies that parse as JSON (and, for ``json_schema``, validate).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.table import Table
from stats import stats, write_report  # bench/ is sys.path[0] when run as a script

from agentevo.config import AgentevoConfig
from agentevo.llm.config import EMBEDDED_MODEL_NAME, GEMMA_MODEL_NAME, LlamaCppBackboneConfig
from agentevo.llm.llamacpp_server import LlamaCppServer
from agentevo.llm.structured import response_format

MODELS = (EMBEDDED_MODEL_NAME, GEMMA_MODEL_NAME)
MODES = ("free", "json_object", "json_schema")
PROMPTS = [
    "Describe a fictional person as JSON with a title, a list of hobbies and a score from 0 to 10.",
    "Summarise this bug report as JSON (title, steps, severity score): the app crashes on an empty file.",
    "Give three fruits and a rating of their taste as JSON.",
    "Describe the city of Paris as JSON with a title, a few landmarks and a score.",
]
FULL = {"reps": 3, "prompts": 4, "max_tokens": 64}
QUICK = {"reps": 1, "prompts": 2, "max_tokens": 32}
REQUEST_TIMEOUT = 600.0
BASE_PORT = (
    18790  # the two servers' ports (+0, +1): off agentevo's defaults, so a running backbone is untouched
)

log = Console(stderr=True)


class Record(BaseModel):
    """The schema of the ``json_schema`` mode: a string, a short list and a bounded number, like agentevo's own."""

    title: str = Field(max_length=60)
    items: list[str] = Field(max_length=4)
    score: int = Field(ge=0, le=10)


def body(model: str, prompt: str, mode: str, max_tokens: int) -> dict:
    """One greedy chat request; the mode decides the ``response_format``."""
    request: dict = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if mode == "json_object":
        request["response_format"] = {"type": "json_object"}
    elif mode == "json_schema":
        request["response_format"] = response_format(Record)
    return request


def valid(mode: str, text: str) -> bool:
    """Whether a reply is what its mode asks for: JSON, and a ``Record`` under the schema."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if mode != "json_schema":
        return True
    try:
        Record.model_validate(data)
    except ValidationError:
        return False
    return True


@contextlib.contextmanager
def servers(threads: int) -> Iterator[dict[str, LlamaCppServer]]:
    """Both models' servers, one slot each, ``threads`` threads, no speculation; stopped on exit."""
    cache_dir = AgentevoConfig().cache_dir
    with contextlib.ExitStack() as stack:
        started: dict[str, LlamaCppServer] = {}
        for offset, name in enumerate(MODELS):
            config = LlamaCppBackboneConfig(
                port=BASE_PORT + offset, parallel=1, ctx_per_slot=2048, threads=threads, speculative="none"
            )
            started[name] = stack.enter_context(LlamaCppServer(config, name, cache_dir, log=log.print))
        yield started


def describe(server: LlamaCppServer) -> dict:
    """What the server serves: file, size, vocabulary, parameters, llama.cpp build."""
    meta = server._request("GET", "/v1/models", timeout=10.0).json()["data"][0]["meta"]
    props = server._request("GET", "/props", timeout=10.0).json()
    assert server.gguf is not None
    return {
        "gguf": server.gguf.name,
        "gguf_mb": round(server.gguf.stat().st_size / 1e6, 1),
        "n_vocab": meta["n_vocab"],
        "n_params": meta["n_params"],
        "llamacpp_build": props.get("build_info"),
    }


def ask(client: httpx.Client, server: LlamaCppServer, request: dict) -> dict:
    """One request; llama.cpp's timings and what came back."""
    resp = client.post(f"{server.base_url}/chat/completions", json=request, timeout=REQUEST_TIMEOUT)
    resp.raise_for_status()
    data = resp.json()
    choice, timings = data["choices"][0], data["timings"]
    return {
        "tokens": timings["predicted_n"],
        "decode_ms": timings["predicted_ms"],
        "prompt_tokens": timings["prompt_n"],
        "prompt_ms": timings["prompt_ms"],
        "finish": choice["finish_reason"],
        "text": choice["message"]["content"] or "",
    }


def measure(threads: int, prompts: list[str], reps: int, max_tokens: int) -> tuple[list[dict], dict]:
    """Every (rep, prompt, model, mode) request at one thread count, interleaved; the raw samples."""
    samples: list[dict] = []
    with servers(threads) as running, httpx.Client() as client:
        models = {name: describe(server) for name, server in running.items()}
        for name, server in running.items():  # one untimed request each: first-call costs stay out
            ask(client, server, body(name, prompts[0], "free", 8))
        total, done = reps * len(prompts) * len(MODELS) * len(MODES), 0
        for rep in range(reps):
            modes = MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]  # each mode goes first once
            for prompt in prompts:
                for name, server in running.items():
                    for mode in modes:
                        result = ask(client, server, body(name, prompt, mode, max_tokens))
                        result.update(
                            threads=threads, model=name, mode=mode, rep=rep, prompt=prompts.index(prompt)
                        )
                        result["valid"] = valid(mode, result.pop("text"))
                        samples.append(result)
                        done += 1
                        log.print(
                            f"[{done}/{total}] t={threads} {name} {mode}: {result['tokens']} tokens, "
                            f"{1000 * result['tokens'] / max(result['decode_ms'], 1e-9):.1f} tok/s",
                            highlight=False,
                        )
    return samples, models


def cell(samples: list[dict]) -> dict:
    """One (threads, model, mode) cell: decode speed over all its tokens, and per-request spread."""
    tokens = sum(s["tokens"] for s in samples)
    decode_ms = sum(s["decode_ms"] for s in samples)
    return {
        "requests": len(samples),
        "tokens": tokens,
        "decode_tok_s": round(1000 * tokens / decode_ms, 2),
        "ms_per_token": round(decode_ms / tokens, 2),
        "ms_per_token_by_request": stats([s["decode_ms"] / s["tokens"] for s in samples if s["tokens"]]),
        "prompt_tok_s": round(
            1000 * sum(s["prompt_tokens"] for s in samples) / max(sum(s["prompt_ms"] for s in samples), 1e-9),
            2,
        ),
        "valid": sum(s["valid"] for s in samples),
        "finish": dict(Counter(s["finish"] for s in samples)),
    }


def summarise(samples: list[dict]) -> list[dict]:
    """One row per (threads, model, mode), with the grammar's cost per token against the same model's free text."""
    rows = []
    for threads in sorted({s["threads"] for s in samples}):
        for model in MODELS:
            free: dict | None = None
            for mode in MODES:
                chosen = [
                    s for s in samples if (s["threads"], s["model"], s["mode"]) == (threads, model, mode)
                ]
                row = {"threads": threads, "model": model, "mode": mode, **cell(chosen)}
                free = free or row
                row["extra_ms_per_token"] = round(row["ms_per_token"] - free["ms_per_token"], 2)
                row["vs_free"] = round(row["decode_tok_s"] / free["decode_tok_s"], 3)
                rows.append(row)
    return rows


def table(rows: list[dict], models: dict[str, dict]) -> Table:
    out = Table(title="Decode speed on llama.cpp, free and held to a grammar (greedy, one slot)")
    for name in ("threads", "model", "vocab", "mode", "requests", "tokens", "decode tok/s", "ms/token"):
        out.add_column(name, justify="right" if name not in ("model", "mode") else "left")
    for name in ("+ms/token vs free", "x free", "valid"):
        out.add_column(name, justify="right")
    for r in rows:
        out.add_row(
            str(r["threads"]), r["model"], f"{models[r['model']]['n_vocab']:,}", r["mode"], str(r["requests"]),
            str(r["tokens"]), f"{r['decode_tok_s']:.1f}", f"{r['ms_per_token']:.1f}",
            f"{r['extra_ms_per_token']:+.1f}", f"{r['vs_free']:.2f}", f"{r['valid']}/{r['requests']}",
        )  # fmt: skip
    return out


def machine(load_before: tuple[float, float, float]) -> dict:
    """Cores, versions, and the load average before and after (other jobs share the cores)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, 2 prompts, 32 tokens")
    parser.add_argument(
        "--threads", default="1,2", help="llama.cpp thread counts, comma-separated (default 1,2)"
    )
    parser.add_argument("--reps", type=int, help="repetitions of every request")
    parser.add_argument("--prompts", type=int, help=f"how many of the {len(PROMPTS)} prompts")
    parser.add_argument("--max-tokens", type=int, help="tokens per reply")
    parser.add_argument("--json-out", type=Path, help="where to write the JSON")
    args = parser.parse_args()
    plan = {**(QUICK if args.quick else FULL)}
    plan.update({k: v for k, v in vars(args).items() if k in plan and v is not None})
    thread_counts = [int(t) for t in args.threads.split(",")]
    began, load_before = time.monotonic(), os.getloadavg()
    samples: list[dict] = []
    models: dict[str, dict] = {}
    for threads in thread_counts:
        got, models = measure(threads, PROMPTS[: plan["prompts"]], plan["reps"], plan["max_tokens"])
        samples += got
    rows = summarise(samples)
    Console(width=160).print(table(rows, models))
    report = {
        "bench": "grammar",
        "plan": {**plan, "threads": thread_counts, "modes": list(MODES), "speculative": "none", "slots": 1},
        "machine": machine(load_before),
        "models": models,
        "seconds": round(time.monotonic() - began, 1),
        "rows": rows,
        "samples": samples,
    }
    write_report(report, "grammar", args.json_out)


if __name__ == "__main__":
    main()
