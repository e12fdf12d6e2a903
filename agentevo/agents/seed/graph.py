"""The agent loop: think (ask the model) -> act (run its tool calls) -> observe (decide what next)."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from langgraph.graph import END, START, StateGraph

from agentevo.contract import StopReason

from .candidates import first_failing
from .config import AgentConfig
from .examples import visible_examples
from .genome import Demo
from .prompting import demo_messages, lesson_tips
from .state import AgentState
from .tools import make_tools
from .workspace import Workspace

CODE_BLOCK = re.compile(r"```(?:python|py)\n(.*?)```", re.DOTALL)


def task_prompt(task: dict[str, Any], lessons: list[dict[str, Any]] | None = None) -> str:
    """The first user message: the instructions, which file must hold the answer, and lessons from memory."""
    files = ", ".join(sorted(task.get("files") or {})) or "none"
    return (
        f"{task['instructions']}\n\nFiles already in the workspace: {files}.\n"
        f"Put your solution in {task.get('solution_file', 'solution.py')}, test it, then call submit."
        f"{lesson_tips(lessons)}"
    )


def build_agent(
    llm: BaseChatModel, workspace: Workspace, config: AgentConfig | None = None, checkpointer: Any = None
):
    """Compile the agent graph. ``llm`` needs ``bind_tools``; ``workspace`` is where the tools act."""
    config = config or AgentConfig()
    tools = {tool.name: tool for tool in make_tools(workspace, config) if tool.name in config.tools}
    model = llm.bind_tools(list(tools.values()))
    sampling: dict[str, Any] = {} if config.temperature is None else {"temperature": config.temperature}

    def think(state: AgentState) -> dict[str, Any]:
        try:
            reply = model.invoke([SystemMessage(config.system_prompt), *state["messages"]], **sampling)
        except Exception as exc:  # noqa: BLE001 - a refused or failed call ends the episode, recorded
            return {
                "stop_reason": StopReason.llm_error.value,
                "error": f"{exc.__class__.__name__}: {exc}"[:2000],
            }
        used = reply.usage_metadata["total_tokens"] if reply.usage_metadata else 0
        return {
            "messages": [reply],
            "steps": state.get("steps", 0) + 1,
            "tokens": state.get("tokens", 0) + used,
        }

    def run_tool(call: ToolCall) -> str:
        tool = tools.get(call["name"])
        if tool is None:
            return f"error: unknown tool {call['name']!r}; use one of {', '.join(tools)}"
        try:
            return str(tool.invoke(call["args"]))
        except Exception as exc:  # noqa: BLE001 - bad arguments are the model's to fix
            return f"error: {exc}"

    def act(state: AgentState) -> dict[str, Any]:
        results, submitted = [], False
        for call in tool_calls(state["messages"][-1]):
            content, failing = run_tool(call), None
            if call["name"] == "submit" and "submit" in tools:
                failing = unmet_example(state)
                submitted = submitted or failing is None
            if failing:
                content = f"not submitted: `{failing}` fails. Fix {state['solution_file']}, then call submit."
            results.append(ToolMessage(content, tool_call_id=call["id"], name=call["name"]))
        return {"messages": results, "submitted": submitted}

    def unmet_example(state: AgentState) -> str | None:
        if not config.check_examples or not state.get("examples"):
            return None
        return first_failing(workspace, state["solution_file"], state["entry_point"], state["examples"])

    def observe(state: AgentState) -> dict[str, Any]:
        if state.get("submitted"):
            return {"stop_reason": StopReason.submitted.value}
        if state.get("steps", 0) >= config.max_steps:
            return {"stop_reason": StopReason.step_budget.value}
        if state.get("tokens", 0) >= config.max_tokens:
            return {"stop_reason": StopReason.token_budget.value}
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and not last.tool_calls:
            # Small models often answer with a code block instead of a tool call: keep the code.
            blocks = CODE_BLOCK.findall(str(last.content))
            if blocks:
                path = state.get("solution_file", "solution.py")
                workspace.write(path, blocks[-1])
                return {"messages": [HumanMessage(config.saved_code.format(path=path))]}
            return {"messages": [HumanMessage(config.nudge)]}
        return {}

    def after_think(state: AgentState) -> str:
        if state.get("stop_reason"):
            return END
        return "act" if tool_calls(state["messages"][-1]) else "observe"

    graph = StateGraph(AgentState)
    graph.add_node("think", think)
    graph.add_node("act", act)
    graph.add_node("observe", observe)
    graph.add_edge(START, "think")
    graph.add_conditional_edges("think", after_think, ["act", "observe", END])
    graph.add_edge("act", "observe")
    graph.add_conditional_edges("observe", lambda s: END if s.get("stop_reason") else "think", ["think", END])
    return graph.compile(checkpointer=checkpointer)


def tool_calls(message: BaseMessage) -> list[ToolCall]:
    """The tool calls a model's reply asks for (none in any other message)."""
    return message.tool_calls if isinstance(message, AIMessage) else []


def initial_state(
    task: dict[str, Any], lessons: list[dict[str, Any]] | None = None, demos: list[Demo] | None = None
) -> AgentState:
    entry = task.get("entry_point") or ""
    return {
        "messages": [*demo_messages(demos or [], task["id"]), HumanMessage(task_prompt(task, lessons))],
        "steps": 0,
        "tokens": 0,
        "submitted": False,
        "solution_file": task.get("solution_file", "solution.py"),
        "entry_point": entry,
        "examples": [e.check for e in visible_examples(task["instructions"], entry)] if entry else [],
    }


def run_config(config: AgentConfig, thread_id: str) -> dict[str, Any]:
    # Each step is three supersteps (think, act, observe); leave room for the last one.
    return {"recursion_limit": 3 * config.max_steps + 5, "configurable": {"thread_id": thread_id}}
