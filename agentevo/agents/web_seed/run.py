"""The entry point of the agent contract: ``python -m agent.run --episode ID --max-steps N --max-tokens T``.

Prints one line per graph step and ends with the contract's result line (the agent's own account; the host
trusts only the gateway's counts and reads the reward from the page itself).
"""

from __future__ import annotations

from agentevo import contract
from agentevo.contract.browser import BrowserServerError, BrowserTools

from .config import WebAgentConfig
from .graph import build_agent, initial_state
from .llm import GatewayLLM


def main() -> None:
    args = contract.parse_args()
    config = WebAgentConfig(max_steps=args.max_steps, max_tokens=args.max_tokens)
    contract.read_task(args.task)
    try:
        browser = BrowserTools.from_env()
        first = browser.observe()
    except (BrowserServerError, OSError) as exc:  # no page to act on (the contract check gives a coding task)
        print(contract.result_line(args.episode, "stopped", 0, 0, f"no browser to act on: {exc}"), flush=True)
        return
    graph = build_agent(GatewayLLM(config.reply_tokens), browser, config)
    state: dict = {}
    # Each decide/act pair is two graph steps; the budget checks stop the loop well before this limit.
    limit = {"recursion_limit": 4 * config.max_steps + 10}
    for update in graph.stream(initial_state(first, config), limit, stream_mode="updates"):
        for node, change in update.items():
            state.update(change or {})
            last = (change or {}).get("history") or [""]
            print(
                f"[{node}] steps={state.get('steps', 0)} tokens={state.get('tokens', 0)} {last[-1]}",
                flush=True,
            )
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
