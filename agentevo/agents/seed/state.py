"""The graph's typed state: the conversation plus the counters the budgets read."""

from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int  # model calls so far
    tokens: int  # prompt + completion tokens so far
    submitted: bool
    solution_file: str  # where the task wants the answer
    entry_point: str  # the function the task asks for ('' when it names none)
    examples: list[str]  # the statement's examples as checks (``examples.Example.check``)
    stop_reason: str  # a reportable agentevo.contract.StopReason value
    error: str
