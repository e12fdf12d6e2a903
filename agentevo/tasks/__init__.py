"""Tasks and suites: the built-in suite, HumanEval, MBPP and Exercism-style folders."""

from agentevo.tasks.model import Split, Task, split_of

__all__ = ["Split", "Task", "split_of"]
