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
    stop_reason: str  # a reportable agentevo.contract.StopReason value
    error: str
