"""The agent's LangGraph: decide (one model call) -> act (one browser action) -> decide ..., until done."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import openai
from langgraph.graph import END, START, StateGraph
from openai.types.chat import ChatCompletionMessageParam

from agentevo.contract.browser import BrowserServerError, BrowserTools, Observation

from .actions import Action, parse_action
from .config import WebAgentConfig
from .llm import GatewayLLM


class State(TypedDict, total=False):
    page: str
    done: bool
    action: dict[str, Any] | None  # {"name": ..., "args": {...}} for act; None: nothing to do
    history: Annotated[list[str], operator.add]
    steps: int
    tokens: int
    stop_reason: str | None
    error: str | None


def _page_text(obs: Observation, limit: int) -> str:
    text = obs.text()
    return text if len(text) <= limit else text[:limit] + "\n[... page cut]"


def build_agent(llm: GatewayLLM, browser: BrowserTools, config: WebAgentConfig):
    """The compiled graph. Its state starts from :func:`initial_state`."""

    def decide(state: State) -> dict[str, Any]:
        if state.get("done"):
            return {"stop_reason": "submitted", "action": None}
        if state.get("steps", 0) >= config.max_steps:
            return {"stop_reason": "step_budget", "action": None}
        if state.get("tokens", 0) >= config.max_tokens:
            return {"stop_reason": "token_budget", "action": None}
        recent = state.get("history", [])[-config.history :] if config.history else []
        user = state["page"] + ("\nYour last actions:\n" + "\n".join(recent) if recent else "") + "\nAction:"
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": config.system_prompt},
            {"role": "user", "content": user},
        ]
        try:
            reply, tokens = llm.reply(messages)
        except openai.APIError as exc:
            return {
                "stop_reason": "llm_error",
                "error": f"{exc.__class__.__name__}: {exc}"[:500],
                "action": None,
            }
        action = parse_action(reply)
        steps, spent = state.get("steps", 0) + 1, state.get("tokens", 0) + tokens
        if action is None:
            return {
                "steps": steps,
                "tokens": spent,
                "action": None,
                "history": [f"(no action) -> {config.nudge}"],
            }
        if action.name == "stop":
            return {"steps": steps, "tokens": spent, "action": None, "stop_reason": "stopped"}
        return {"steps": steps, "tokens": spent, "action": {"name": action.name, "args": action.args}}

    def act(state: State) -> dict[str, Any]:
        chosen = state["action"]
        assert chosen is not None  # route() comes here only with an action
        action = Action(chosen["name"], chosen["args"])
        try:
            obs = getattr(browser, action.name)(**action.args)
        except (BrowserServerError, TypeError) as exc:
            return {"history": [f"{action} -> error: {exc}"]}
        outcome = f"error: {obs.error}" if obs.error else "ok"
        return {
            "page": _page_text(obs, config.observation_chars),
            "done": obs.done,
            "history": [f"{action} -> {outcome}"],
        }

    def route(state: State) -> str:
        if state.get("stop_reason"):
            return END
        return "act" if state.get("action") else "decide"

    graph = StateGraph(State)
    graph.add_node("decide", decide)
    graph.add_node("act", act)
    graph.add_edge(START, "decide")
    graph.add_conditional_edges("decide", route, ["act", "decide", END])
    graph.add_edge("act", "decide")
    return graph.compile()


def initial_state(obs: Observation, config: WebAgentConfig) -> State:
    return {
        "page": _page_text(obs, config.observation_chars),
        "done": obs.done,
        "history": [],
        "steps": 0,
        "tokens": 0,
        "stop_reason": None,
        "error": None,
        "action": None,
    }
