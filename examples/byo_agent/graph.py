"""plan -> write -> test, and back to write while the test fails and steps are left."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

CODE = re.compile(r"```(?:python|py)?\n(.*?)```", re.DOTALL)


class State(TypedDict, total=False):
    task: dict
    plan: str
    code: str
    feedback: str
    steps: int
    tokens: int
    stop_reason: str
    error: str


def build(ask, workspace: Path, max_steps: int, max_tokens: int):
    """``ask(prompt) -> (text, tokens)`` is the model; the solution goes to the task's solution file."""

    def budget(state: State) -> dict:
        if state.get("steps", 0) >= max_steps:
            return {"stop_reason": "step_budget"}
        if state.get("tokens", 0) >= max_tokens:
            return {"stop_reason": "token_budget"}
        return {}

    def call(state: State, prompt: str) -> tuple[str, dict]:
        try:
            text, used = ask(prompt)
        except Exception as exc:  # noqa: BLE001 - a refused call (budget, bad request) ends the episode
            return "", {"stop_reason": "llm_error", "error": f"{type(exc).__name__}: {exc}"[:500]}
        return text, {"steps": state.get("steps", 0) + 1, "tokens": state.get("tokens", 0) + used}

    def plan(state: State) -> dict:
        if over := budget(state):
            return over
        text, update = call(
            state, f"In three short steps, plan how to solve this task:\n\n{state['task']['instructions']}"
        )
        return {**update, "plan": text}

    def write(state: State) -> dict:
        if over := budget(state):
            return over
        prompt = (
            f"Task:\n{state['task']['instructions']}\n\nPlan:\n{state.get('plan', '')}\n\n"
            f"{state.get('feedback', '')}\nReply with the whole file {solution_file(state)} in one ```python block."
        )
        text, update = call(state, prompt)
        found = CODE.search(text)
        if found:
            (workspace / solution_file(state)).write_text(found.group(1))
        return {**update, "code": found.group(1) if found else ""}

    def test(state: State) -> dict:
        path = workspace / solution_file(state)
        if not path.exists():
            return {"feedback": "No code block was found in your reply."}
        try:
            run = subprocess.run(
                ["python", str(path)], check=False, capture_output=True, text=True, timeout=30, cwd=workspace
            )
        except subprocess.TimeoutExpired:
            return {"feedback": "Running the file took over 30 s. Make it faster."}
        if run.returncode == 0:
            return {"stop_reason": "submitted"}
        return {"feedback": f"Running the file failed:\n{run.stderr[-1500:]}\nFix it."}

    def after(state: State) -> str:
        return END if state.get("stop_reason") else "write"

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("write", write)
    graph.add_node("test", test)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", after, {END: END, "write": "write"})
    graph.add_conditional_edges(
        "write", lambda s: END if s.get("stop_reason") else "test", {END: END, "test": "test"}
    )
    graph.add_conditional_edges("test", after, {END: END, "write": "write"})
    return graph.compile()


def solution_file(state: State) -> str:
    return state["task"].get("solution_file") or "solution.py"
