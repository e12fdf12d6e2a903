"""Tasks and suites: the built-in suite, HumanEval, MBPP and Exercism-style folders."""

from agentevo.tasks.model import Split, Task, split_of
from agentevo.tasks.suites import SuiteError, load_suite

__all__ = ["Split", "SuiteError", "Task", "load_suite", "split_of"]
