"""Isolated mode: run one episode inside the sandbox, talking to the LLM only through the gateway.

    python -m agent.run --task /tmp/agent-task.json [--max-steps N] [--max-tokens N]

Streams one line per graph step and ends with ``AGENTEVO-AGENT <json>`` (the agent's own account;
the host trusts only the gateway's counts and the evaluator's verdict).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time

from .config import AgentConfig
from .graph import build_agent, initial_state, run_config
from .llm import GatewayChatModel
from .workspace import LocalWorkspace


def _checkpointer(path: str):
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:  # an evolved image may lack it; episodes still run, just not resumable
        return None
    return SqliteSaver(sqlite3.connect(path, check_same_thread=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", required=True)
    parser.add_argument("--workspace", default="/workspace")
    parser.add_argument("--checkpoint", default="/tmp/agent-checkpoint.sqlite")
    parser.add_argument("--thread-id", default="episode")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--max-tokens", type=int)
    args = parser.parse_args()
    overrides = {k: v for k, v in {"max_steps": args.max_steps, "max_tokens": args.max_tokens}.items() if v}
    config = AgentConfig(**overrides)
    with open(args.task) as fh:
        task = json.load(fh)
    graph = build_agent(GatewayChatModel.from_env(), LocalWorkspace(args.workspace), config, _checkpointer(args.checkpoint))
    cfg = run_config(config, args.thread_id)
    state: dict = {}
    last = time.perf_counter()
    for update in graph.stream(initial_state(task), cfg, stream_mode="updates"):
        now = time.perf_counter()
        for node, change in update.items():
            state.update({k: v for k, v in (change or {}).items() if k != "messages"})
            print(f"[{node}] steps={state.get('steps', 0)} tokens={state.get('tokens', 0)} seconds={now - last:.3f}", flush=True)
        last = now
    summary = {k: state.get(k) for k in ("stop_reason", "steps", "tokens", "error")}
    print("AGENTEVO-AGENT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
