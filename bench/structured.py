"""Structured outputs on the embedded model: today's prompts and parsers (before) against answers held to a schema
(after), in one run, on train tasks of the built-in suite and the task ladder.

    .venv/bin/python bench/structured.py [--tasks 52] [--host-tasks N] [--kinds tool,lesson,reflect] [--backbone llamacpp]
                                         [--parallel 4] [--port 8112] [--threads 1] [--before REV] [--json-out PATH]

Each kind of call is asked once per task both ways, with the same inputs on the same backbone:

- ``tool``: the seed agent's first step (its system prompt, task prompt and five tools). Before: fenced action
  blocks parsed after the fact; after: the reply held to the tools' schema. Valid: a call of one of the tools whose
  arguments validate against that tool's schema.
- ``lesson``: memory's reflection on the episode (the task; the agent's before-reply as its trajectory, marked
  failed). Before: the JSON-array prompt and parser; after: ``LessonDrafts``. Valid: at least one lesson, none
  of the answer's items rejected.
- ``reflect``: the reflect operator on the seed agent, shown two failed episodes (this task's and the next one's).
  Before: ``=== FILE:`` blocks; after: the edits schema. Valid: the answer parses (a block naming a surface /
  ``Edits``); changed: the child's surface differs from the parent's (before, an unchanged child is what the gate
  refuses as ``empty_diff``).

"Before" is the code at ``--before`` (the commit before structured outputs), loaded from git, so today's code runs
against exactly what it replaced. Host calls go through a gateway as in a run (its ``llm.max_tokens`` cap, its
records give each call's tokens and seconds); tool calls go to the chat model directly, ``--parallel`` at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from stats import write_report

from agentevo.agents.seed.config import AgentConfig
from agentevo.agents.seed.graph import task_prompt
from agentevo.agents.seed.tools import make_tools
from agentevo.config import AgentevoConfig
from agentevo.evolve.evidence import FailedEpisode
from agentevo.evolve.operators import MutationFailed, Parent, Reflect, ReflectFailure
from agentevo.gateway import ChatModelBackend, Gateway
from agentevo.gateway.client import HostLLM, HostLLMError
from agentevo.llm.backbone import make_chat_model
from agentevo.llm.config import LlamaCppBackboneConfig, LLMConfig, VLLMBackboneConfig
from agentevo.llm.fenced_tools import FencedToolModel
from agentevo.llm.schema_tools import SchemaToolModel
from agentevo.llm.structured import StructuredFailure, StructuredOutputError
from agentevo.llm.supervised import ServerError
from agentevo.memory import distil
from agentevo.memory.models import Provenance
from agentevo.tasks import Task
from agentevo.tasks.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "b733ac6"  # the last commit before structured outputs
SEED = ROOT / "agentevo" / "agents" / "seed"
PROVENANCE = Provenance(source="bench-structured")
COLUMNS = ("kind", "variant", "answers", "valid", "changed", "calls", "tokens/call", "s/call", "failures")


MOVED = {
    "agentevo.evolve.config": "agentevo.config.evolve"
}  # modules moved since BEFORE: old name -> today's


def module_at(rev: str, path: str, name: str) -> types.ModuleType:
    """The module ``path`` as it was at ``rev`` (imported under ``name``, beside today's code); what it imports
    from a module that has moved since is found at the module's new place."""
    for old, new in MOVED.items():
        sys.modules.setdefault(old, importlib.import_module(new))
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / path)
    sys.modules[name] = module  # pydantic resolves the module's annotations through sys.modules
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def train_tasks(count: int) -> list[Task]:
    """``count`` train tasks, alternating the built-in suite and the task ladder (each in its natural order)."""
    suites = [load_suite("builtin", split="train"), load_suite("ladder", split="train")]
    mixed = [t for pair in zip(*suites, strict=False) for t in pair]
    return mixed[:count]


class NoWorkspace:
    """The tools are only described to the model here, never run."""

    root = "/workspace"

    def run(self, command: str, timeout: float) -> tuple[int, str]:
        raise RuntimeError("bench tools do not run")


# --------------------------------------------------------------------------------------------------- tool


def tool_call(model: Any, tools: list[Any], task: Task) -> dict[str, Any]:
    """One seed-agent first step: the reply, whether it is a valid call, its tokens and seconds."""
    config = AgentConfig()
    messages = [("system", config.system_prompt), ("user", task_prompt(task.public_view()))]
    for attempt in range(3):  # the server answering nothing in time is the machine's fault, not the answer's
        started = time.perf_counter()
        try:
            reply = model.invoke(messages, max_tokens=512)
            break
        except (ServerError, openai.APIConnectionError):
            if attempt == 2:
                raise
    seconds = time.perf_counter() - started
    text = reply.response_metadata.get("raw_text") or str(reply.content)
    valid = valid_call(reply.tool_calls, {t.name: t for t in tools})
    return {
        "valid": valid, "tokens": (reply.usage_metadata or {}).get("output_tokens", 0), "seconds": seconds,
        "text": text, "failure": None if valid else why_no_call(reply) or "invalid_arguments",
    }  # fmt: skip


def why_no_call(reply: Any) -> str | None:
    """Why a reply holds no usable call: its named failure, the fenced parser's error, or plain text."""
    meta = reply.response_metadata
    if reply.tool_calls:
        return None
    return meta.get("structured_failure") or meta.get("fenced_action_error") or "no_tool_call (plain text)"


def valid_call(calls: list[dict[str, Any]], tools: dict[str, Any]) -> bool:
    if len(calls) != 1 or calls[0]["name"] not in tools:
        return False
    try:
        tools[calls[0]["name"]].args_schema.model_validate(calls[0]["args"])
    except ValidationError:
        return False
    return True


# --------------------------------------------------------------------------------------------------- lesson


def lesson_before(old: types.ModuleType, llm: HostLLM, task: Task, trajectory: str) -> dict[str, Any]:
    try:
        reply = llm.ask(old.SYSTEM, old.reflection_prompt(task.instructions, trajectory, False, 3),
                        agent_id="bench", purpose="distil")  # fmt: skip
    except HostLLMError as exc:
        return {"valid": False, "failure": f"call failed: {exc}"}
    lessons, rejected = old.parse_lessons(reply, PROVENANCE, 3)
    return {"valid": bool(lessons) and not rejected, "failure": "; ".join(rejected)[:200] or None}


def lesson_after(llm: HostLLM, task: Task, trajectory: str) -> dict[str, Any]:
    try:
        drafts = llm.ask_structured(distil.SYSTEM, distil.reflection_prompt(task.instructions, trajectory, False, 3),
                                    distil.LessonDrafts, agent_id="bench", purpose="distil")  # fmt: skip
    except (StructuredOutputError, HostLLMError) as exc:
        return {"valid": False, "failure": str(exc)}
    lessons, rejected = distil.to_lessons(drafts, PROVENANCE, 3)
    return {"valid": bool(lessons) and not rejected, "failure": "; ".join(rejected)[:200] or None}


# --------------------------------------------------------------------------------------------------- reflect


def reflect_once(operator: Any, parent: Any, workdir: Path) -> dict[str, Any]:
    """One reflection: whether its answer parsed, and whether the child's surfaces differ from the parent's."""
    try:
        proposal = operator.propose(parent, workdir)
    except MutationFailed as exc:
        parsed = "reflect changed no file" in str(exc)  # parsed edits that changed nothing
        return {"valid": parsed, "changed": False, "failure": str(exc)[:200]}
    except (StructuredOutputError, HostLLMError) as exc:
        return {"valid": False, "changed": False, "failure": str(exc)[:200]}
    changed = [
        s for s in operator._surfaces(SEED) if (proposal.folder / s).read_text() != (SEED / s).read_text()
    ]
    parsed = not proposal.change.endswith("nothing")
    return {"valid": parsed, "changed": bool(changed), "failure": None if changed else proposal.change}


def failed_episode(task: Task, trajectory: str) -> FailedEpisode:
    return FailedEpisode(task_id=task.id, instructions=task.instructions, verdict="wrong_answer", score=0.0,
                         trajectory=trajectory[-4000:])  # fmt: skip


# --------------------------------------------------------------------------------------------------- report


def summary(kind: str, variant: str, rows: list[dict[str, Any]], calls: list[Any] | None) -> dict[str, Any]:
    """Shares and means of one kind and variant; host calls take their tokens and seconds from the records."""
    n = len(rows)
    out: dict[str, Any] = {"kind": kind, "variant": variant, "answers": n,
                           "valid": sum(r["valid"] for r in rows), "valid_share": round(sum(r["valid"] for r in rows) / n, 3)}  # fmt: skip
    if kind == "reflect":
        out["changed"] = sum(r["changed"] for r in rows)
        out["changed_share"] = round(out["changed"] / n, 3)
    if calls is None:  # direct calls: one per answer
        out["calls"] = n
        out["tokens_per_call"] = round(sum(r["tokens"] for r in rows) / n, 1)
        out["seconds_per_call"] = round(sum(r["seconds"] for r in rows) / n, 2)
    else:
        out["calls"] = len(calls)
        out["tokens_per_call"] = round(sum(c.completion_tokens for c in calls) / max(1, len(calls)), 1)
        out["seconds_per_call"] = round(sum(c.latency_ms for c in calls) / 1000 / max(1, len(calls)), 2)
    failed = [r for r in rows if not r["valid"] or (kind == "reflect" and not r["changed"])]
    out["failures"] = dict(Counter(named(str(r["failure"])) for r in failed).most_common(6))
    out["failure_details"] = [str(r["failure"])[:300] for r in failed[:3]]
    return out


def named(failure: str) -> str:
    """The named reason in a failure's text (a StructuredFailure or ReflectFailure value), else its first words."""
    names = [*StructuredFailure, *ReflectFailure]
    return next((n.value for n in names if n.value in failure), failure.split(":")[0][:40])


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("kind", "variant", "failures") else "right")
    for r in rows:
        changed = f"{r['changed_share']:.0%}" if "changed" in r else ""
        table.add_row(r["kind"], r["variant"], str(r["answers"]), f"{r['valid_share']:.0%}", changed, str(r["calls"]),
                      str(r["tokens_per_call"]), str(r["seconds_per_call"]), str(r["failures"]))  # fmt: skip
    Console().print(table)


# --------------------------------------------------------------------------------------------------- run


def both(pool: ThreadPoolExecutor, before: Callable[[int], dict], after: Callable[[int], dict], n: int):
    """Run before and after for every input, interleaved so the machine's load drifts over both alike."""
    futures = [(pool.submit(before, i), pool.submit(after, i)) for i in range(n)]
    return [f.result() for f, _ in futures], [g.result() for _, g in futures]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=52)
    parser.add_argument("--kinds", default="tool,lesson,reflect")
    parser.add_argument(
        "--host-tasks", type=int, help="lesson and reflect on the first N tasks only (default: all)"
    )
    parser.add_argument("--backbone", default="llamacpp")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument(
        "--port", type=int, default=8112, help="for the llamacpp or vllm server the bench starts"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads: on a shared, busy machine one "
        "thread ran 2-20x faster than two, whose threads wait for each other at every step",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds per call: a busy machine is slow, "
        "and a call cut off by the client's timeout measures nothing",
    )
    parser.add_argument(
        "--surfaces", default="prompts/*.md", help="reflect's surfaces (evolve.surfaces), comma-separated"
    )
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    old_distil = module_at(args.before, "agentevo/memory/distil.py", "bench_before_distil")
    old_operators = module_at(args.before, "agentevo/evolve/operators.py", "bench_before_operators")
    tasks = train_tasks(args.tasks)
    host_tasks = min(args.host_tasks or len(tasks), len(tasks))
    load_before, started = os.getloadavg(), time.perf_counter()
    config = AgentevoConfig()
    # A server of the bench's own (a shared one may be stopped by its owner mid-run), one slot per parallel call.
    servers = {"llamacpp": LlamaCppBackboneConfig(port=args.port, parallel=args.parallel, threads=args.threads),
               "vllm": VLLMBackboneConfig(port=args.port)}  # fmt: skip
    backbone = LLMConfig(
        backbone=args.backbone,
        timeout=args.timeout,
        **({args.backbone: servers[args.backbone]} if args.backbone in servers else {}),
    )
    model = make_chat_model(backbone, config.cache_dir)
    tools = make_tools(NoWorkspace(), AgentConfig())
    rows, samples = [], {}
    pool = ThreadPoolExecutor(args.parallel)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-structured-") as scratch,
            Gateway(
                ChatModelBackend(model, LLMConfig().model), run_dir=Path(scratch), run_id="bench"
            ) as gateway,
        ):
            host = {v: HostLLM(gateway, scope=v, timeout=900) for v in ("before", "after")}
            fenced, schema = (
                FencedToolModel(inner=model, tools=tools),
                SchemaToolModel(inner=model, tools=tools),
            )
            print(f"{len(tasks)} tasks; tool calls", flush=True)
            tool_rows = both(pool, lambda i: tool_call(fenced, tools, tasks[i]),
                             lambda i: tool_call(schema, tools, tasks[i]), len(tasks))  # fmt: skip
            trajectories = [f"[user] {task_prompt(t.public_view())}\n\n[assistant] {r['text']}"
                            for t, r in zip(tasks, tool_rows[0], strict=True)]  # fmt: skip
            if "tool" in kinds:
                rows += [
                    summary("tool", v, r, None) for v, r in zip(("before", "after"), tool_rows, strict=True)
                ]
                progress_rows(rows)
                samples["tool"] = [{"task": t.id, "before": b["text"][:300], "after": a["text"][:300]}
                                   for t, b, a in list(zip(tasks, *tool_rows, strict=True))[:5]]  # fmt: skip
            if "reflect" in kinds:
                print("reflections", flush=True)
                reflect_rows = run_reflections(
                    pool,
                    old_operators,
                    host,
                    tasks[:host_tasks],
                    trajectories,
                    Path(scratch),
                    args.surfaces.split(","),
                )
                rows += [summary("reflect", v, r, calls_of(gateway, v, "reflect"))
                         for v, r in zip(("before", "after"), reflect_rows, strict=True)]  # fmt: skip
                progress_rows(rows)
            if "lesson" in kinds:
                print("lessons", flush=True)
                lesson_rows = both(pool, lambda i: lesson_before(old_distil, host["before"], tasks[i], trajectories[i]),
                                   lambda i: lesson_after(host["after"], tasks[i], trajectories[i]), host_tasks)  # fmt: skip
                rows += [summary("lesson", v, r, calls_of(gateway, v, "distil"))
                         for v, r in zip(("before", "after"), lesson_rows, strict=True)]  # fmt: skip
                progress_rows(rows)
    finally:  # a failure leaves no call running and no server behind
        pool.shutdown(cancel_futures=True)
        if getattr(model, "server", None) is not None:
            model.server.stop()
    report = {"backbone": args.backbone, "threads": args.threads, "surfaces": args.surfaces, "tasks": [t.id for t in tasks], "before": args.before,
              "parallel": args.parallel, "cores": os.cpu_count(), "load_before": load_before,
              "load_after": os.getloadavg(), "wall_s": round(time.perf_counter() - started, 1),
              "rows": rows, "samples": samples}  # fmt: skip
    print_table(
        rows, f"structured outputs, {len(tasks)} train tasks, {args.backbone}, before = {args.before}"
    )
    write_report(report, "structured", args.json_out)
    return 0


def progress_rows(rows: list[dict[str, Any]]) -> None:
    """The rows of the kind just measured, at once (a long run's finished kinds are not lost to an interruption)."""
    print(json.dumps(rows[-2:]), flush=True)


def calls_of(gateway: Gateway, variant: str, purpose: str) -> list[Any]:
    return [c for c in gateway.recorder.read() if c.task_id == f"{variant}/{purpose}"]


def run_reflections(pool, old_operators, host, tasks, trajectories, scratch: Path, surfaces: list[str]):
    """Each task's reflection on the seed agent, shown this task's and the next one's failed episode."""
    before_op = old_operators.Reflect(host["before"], surfaces)
    after_op = Reflect(host["after"], surfaces)

    def parent(cls: Any, i: int) -> Any:
        j = (i + 1) % len(tasks)
        failed = [failed_episode(tasks[i], trajectories[i]), failed_episode(tasks[j], trajectories[j])]
        return cls(id=f"seed-{i}", folder=SEED, failed=failed)

    work = scratch / "children"
    return both(pool, lambda i: reflect_once(before_op, parent(old_operators.Parent, i), work / f"b{i}"),
                lambda i: reflect_once(after_op, parent(Parent, i), work / f"a{i}"), len(tasks))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
