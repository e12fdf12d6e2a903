# The Exercism-style fixtures hold unittest files named like tests (`*_test.py`); they are data.
collect_ignore = ["exercism"]
