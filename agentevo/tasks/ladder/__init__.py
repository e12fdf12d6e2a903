"""The ladder: a procedurally generated coding suite in five levels, from one-liners to small algorithms.

``template.py`` turns one template and a seed into a Task (statement, stub, hidden tests and
reference drawn together); ``level1.py`` ... ``level5.py`` hold the templates; ``suite.py`` draws
the instances and holds some templates out for transfer. See docs/ladder.md.
"""

from agentevo.tasks.ladder.suite import generate_ladder, load_ladder, templates

__all__ = ["generate_ladder", "load_ladder", "templates"]
