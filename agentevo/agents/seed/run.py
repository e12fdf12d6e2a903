"""Isolated mode: run one episode inside the sandbox, talking to the LLM only through the gateway.

The entry point of the agent contract (``agentevo.contract``): ``python -m agent.run --episode ID ...``.
Streams one line per graph step and ends with the contract's result line (the agent's own account;
the host trusts only the gateway's counts and the evaluator's verdict).
"""

from __future__ import annotations

import sqlite3
import time

from agentevo import contract

from .config import AgentConfig
from .graph import build_agent, initial_state, run_config
from .lessons import fetch_lessons
from .llm import GatewayChatModel
from .workspace import LocalWorkspace


def _checkpointer(path: str):
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:  # an evolved image may lack it; episodes still run, just not resumable
        return None
    return SqliteSaver(sqlite3.connect(path, check_same_thread=False))


def main() -> None:
    args = contract.parse_args()
    config = AgentConfig(max_steps=args.max_steps, max_tokens=args.max_tokens)
    task = contract.read_task(args.task)
    graph = build_agent(
        GatewayChatModel.from_env(), LocalWorkspace(args.workspace), config, _checkpointer(args.checkpoint)
    )
    cfg = run_config(config, args.episode)
    state: dict = {}
    last = time.perf_counter()
    lessons = fetch_lessons(task["instructions"])
    if lessons:
        print(f"[memory] {len(lessons)} lessons: {', '.join(x['id'][:8] for x in lessons)}", flush=True)
    for update in graph.stream(initial_state(task, lessons), cfg, stream_mode="updates"):
        now = time.perf_counter()
        for node, change in update.items():
            state.update({k: v for k, v in (change or {}).items() if k != "messages"})
            print(
                f"[{node}] steps={state.get('steps', 0)} tokens={state.get('tokens', 0)} seconds={now - last:.3f}",
                flush=True,
            )
        last = now
    line = contract.result_line(
        args.episode, state.get("stop_reason") or "stopped", state.get("steps", 0), state.get("tokens", 0),
        state.get("error"),
    )  # fmt: skip
    print(line, flush=True)


if __name__ == "__main__":
    main()
