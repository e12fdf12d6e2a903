"""Looking at runs: the HTML report (``agentevo report``), the status of a live or finished run (``agentevo
status``) and the configuration reference generated from the models."""

from agentevo.report.data import ReportError, RunReport, collect
from agentevo.report.page import render, write_report
from agentevo.report.status import RunState, RunStatus, StatusError, run_status

__all__ = [
    "ReportError",
    "RunReport",
    "RunState",
    "RunStatus",
    "StatusError",
    "collect",
    "render",
    "run_status",
    "write_report",
]
