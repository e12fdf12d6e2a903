"""Level 1: one-liners on numbers and strings ("return the sum of a and b", "return the string reversed")."""

from __future__ import annotations

from agentevo.tasks.ladder.draw import int_lists, ints, one, word, words
from agentevo.tasks.ladder.template import Template

GREETINGS = ("Hello", "Hi", "Welcome", "Good morning", "Hey", "Greetings", "Good evening", "Howdy")
NAMES = ["Ana", "Bo", "Chen", "Dana", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]

TEMPLATES = [
    Template(
        name="add-constant",
        statement="returns `n` plus $k.",
        reference="def add_constant(n):\n    return n + $k\n",
        params=lambda r: {"k": r.randint(2, 99)},
        inputs=lambda r, p: one([*ints(r, 4, -100, 100), 0, 1]),
    ),
    Template(
        name="multiply-by",
        statement="returns `n` multiplied by $k.",
        reference="def multiply_by(n):\n    return n * $k\n",
        params=lambda r: {"k": r.randint(2, 12)},
        inputs=lambda r, p: one([*ints(r, 4), 0, 1, -1]),
    ),
    Template(
        name="sum-two",
        statement="returns the sum of `a` and `b`.",
        reference="def sum_two(a, b):\n    return a + b\n",
        inputs=lambda r, p: [tuple(ints(r, 2, -99, 99)) for _ in range(4)] + [(0, 0), (5, 7)],
    ),
    Template(
        name="difference",
        statement="returns `a` minus `b`.",
        reference="def difference(a, b):\n    return a - b\n",
        inputs=lambda r, p: [tuple(ints(r, 2, -99, 99)) for _ in range(4)] + [(0, 0), (3, 10)],
    ),
    Template(
        name="reverse-string",
        statement="returns the string `s` reversed.",
        reference="def reverse_string(s):\n    return s[::-1]\n",
        inputs=lambda r, p: one([*words(r, 3), "ab", "", "x"]),
    ),
    Template(
        name="shout",
        statement="returns `s` in upper case followed by $k exclamation marks (`!`).",
        reference='def shout(s):\n    return s.upper() + "!" * $k\n',
        params=lambda r: {"k": r.randint(1, 4)},
        inputs=lambda r, p: one([*words(r, 4), "", "Hi there"]),
    ),
    Template(
        name="first-chars",
        statement="returns the first $k characters of the string `s` (all of `s` when it is shorter).",
        reference="def first_chars(s):\n    return s[:$k]\n",
        params=lambda r: {"k": r.randint(2, 5)},
        inputs=lambda r, p: one([*words(r, 3), "abcdefghij", "", "a"]),
    ),
    Template(
        name="is-multiple",
        statement="returns True when `n` is divisible by $k, else False.",
        reference="def is_multiple(n):\n    return n % $k == 0\n",
        params=lambda r: {"k": r.randint(2, 9)},
        inputs=lambda r, p: one([p["k"] * r.randint(2, 9), *ints(r, 3, 1, 60), p["k"] + 1, 0, 1, -p["k"]]),
    ),
    Template(
        name="larger",
        statement="returns the larger of the two numbers `a` and `b`.",
        reference="def larger(a, b):\n    return max(a, b)\n",
        inputs=lambda r, p: [tuple(ints(r, 2)) for _ in range(4)] + [(1, 9), (-3, -8), (4, 4)],
    ),
    Template(
        name="power",
        statement="returns `n` raised to the power $k.",
        reference="def power(n):\n    return n ** $k\n",
        params=lambda r: {"k": r.randint(2, 5)},
        inputs=lambda r, p: one([*ints(r, 3, -9, 9), 2, 0, 1, -1]),
    ),
    Template(
        name="greet",
        statement='returns the greeting `"$greeting, NAME!"` with NAME replaced by `name`.',
        reference='def greet(name):\n    return "$greeting, " + name + "!"\n',
        params=lambda r: {"greeting": r.choice(GREETINGS)},
        inputs=lambda r, p: one([*r.sample(NAMES, 3), "World", ""]),
    ),
    Template(
        name="last-item",
        statement="returns the last element of the non-empty list `items`.",
        reference="def last_item(items):\n    return items[-1]\n",
        inputs=lambda r, p: one([*int_lists(r, 3), words(r, 3), [7], [1, 2]]),
    ),
    Template(
        name="list-total",
        statement="returns the sum of the numbers in the list `items` (0 for an empty list).",
        reference="def list_total(items):\n    return sum(items)\n",
        inputs=lambda r, p: one([*int_lists(r, 3, low=-5, high=30), [4], [], [2, 3]]),
    ),
    Template(
        name="repeat-word",
        statement="returns the string `s` repeated $k times, with nothing in between.",
        reference="def repeat_word(s):\n    return s * $k\n",
        params=lambda r: {"k": r.randint(2, 5)},
        inputs=lambda r, p: one([word(r), word(r), "ab", "", "x"]),
    ),
    Template(
        name="distance-from",
        statement="returns how far `n` is from $k: the absolute value of `n` minus $k.",
        reference="def distance_from(n):\n    return abs(n - $k)\n",
        params=lambda r: {"k": r.randint(-20, 40)},
        inputs=lambda r, p: one([*ints(r, 4, -60, 60), p["k"], 0, 1]),
        transfer=True,
    ),
    Template(
        name="is-longer",
        statement="returns True when the string `s` has more than $k characters, else False.",
        reference="def is_longer(s):\n    return len(s) > $k\n",
        params=lambda r: {"k": r.randint(3, 6)},
        inputs=lambda r, p: one([*words(r, 4), "a" * p["k"], "b" * (p["k"] + 1), ""]),
        transfer=True,
    ),
]
