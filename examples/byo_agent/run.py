"""The entry point the contract names (``python -m agent.run ...``): one episode, one result line."""

from __future__ import annotations

from pathlib import Path

from agentevo import contract

from .graph import build
from .model import ask, gateway_client


def main() -> None:
    args = contract.parse_args()
    client = gateway_client()
    graph = build(lambda prompt: ask(client, prompt), Path(args.workspace), args.max_steps, args.max_tokens)
    state = graph.invoke({"task": contract.read_task(args.task), "steps": 0, "tokens": 0})
    print(contract.result_line(args.episode, state.get("stop_reason") or "stopped", state.get("steps", 0),
                               state.get("tokens", 0), state.get("error")), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
