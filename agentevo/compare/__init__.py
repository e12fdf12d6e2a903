"""Comparing ways of running an agent (arms) on the same tasks, paired, with statistics: ``agentevo compare``.

``compare(arms, suite=..., attempts=...)`` runs every arm and returns a :class:`Comparison`; see ``docs/compare.md``.
"""

from agentevo.compare.analysis import ArmSummary, Comparison, PairedSummary
from agentevo.compare.arms import Arm, ArmError, arm_from, load_arms, parse_arm
from agentevo.compare.plan import CompareError
from agentevo.compare.report import RichProgress, print_table, summary_line, table
from agentevo.compare.run import compare, results_of

__all__ = [
    "Arm",
    "ArmError",
    "ArmSummary",
    "CompareError",
    "Comparison",
    "PairedSummary",
    "RichProgress",
    "arm_from",
    "compare",
    "load_arms",
    "parse_arm",
    "print_table",
    "results_of",
    "summary_line",
    "table",
]
