"""Isolated mode: run one episode inside the sandbox, talking to the LLM only through the gateway.

The entry point of the agent contract (``agentevo.contract``): ``python -m agent.run --episode ID ...``.
The genome (``genome.json``) picks the strategy: a direct answer for one-function tasks, or the tool loop, which
streams one line per graph step. Either ends with the contract's result line (the agent's own account; the host
trusts only the gateway's counts and the evaluator's verdict).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from agentevo import contract

from .config import loop_config
from .direct import solve_directly
from .genome import CaseUse, Genome, load_genome
from .graph import build_agent, initial_state, run_config
from .lessons import cases_as_demos, fetch_cases, fetch_lessons
from .llm import GatewayChatModel
from .workspace import LocalWorkspace


def _checkpointer(path: str):
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:  # an evolved image may lack it; episodes still run, just not resumable
        return None
    return SqliteSaver(sqlite3.connect(path, check_same_thread=False))


def run_loop(
    llm: GatewayChatModel, args: contract.EpisodeArgs, task: dict, genome: Genome, lessons: list
) -> dict:
    """The tool loop, streamed step by step; its final state."""
    config = loop_config(genome, args.max_steps, args.max_tokens)
    graph = build_agent(llm, LocalWorkspace(args.workspace), config, _checkpointer(args.checkpoint))
    state: dict[str, Any] = {}
    last = time.perf_counter()
    start = initial_state(task, lessons, genome.demos)
    for update in graph.stream(start, run_config(config, args.episode), stream_mode="updates"):
        now = time.perf_counter()
        for node, change in update.items():
            state.update({k: v for k, v in (change or {}).items() if k != "messages"})
            print(
                f"[{node}] steps={state.get('steps', 0)} tokens={state.get('tokens', 0)} seconds={now - last:.3f}",
                flush=True,
            )
        last = now
    return state


def main() -> None:
    args = contract.parse_args()
    genome = load_genome()
    task = contract.read_task(args.task)
    llm = GatewayChatModel.from_env(max_tokens=genome.reply_tokens)
    lessons = fetch_lessons(task["instructions"])
    if lessons:
        print(f"[memory] {len(lessons)} lessons: {', '.join(x['id'][:8] for x in lessons)}", flush=True)
    cases = cases_as_demos(fetch_cases(task["instructions"], genome.cases)) if genome.cases else []
    if cases:
        print(f"[memory] {len(cases)} solved cases: {', '.join(c.task_id for c in cases)}", flush=True)
    if genome.direct_for(task):
        workspace = LocalWorkspace(args.workspace)
        retry = genome.cases_when is CaseUse.retry
        shown, later = ([], cases) if retry else (cases, [])
        state = solve_directly(
            llm,
            workspace,
            task,
            genome.with_demos(shown),
            calls=args.max_steps,
            lessons=lessons,
            retry_demos=later,
        )
    else:
        state = run_loop(llm, args, task, genome.with_demos(cases), lessons)
    line = contract.result_line(
        args.episode,
        state.get("stop_reason") or "stopped",
        state.get("steps", 0),
        state.get("tokens", 0),
        state.get("error"),
    )
    print(line, flush=True)


if __name__ == "__main__":
    main()
