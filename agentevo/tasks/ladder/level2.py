"""Level 2: one line with a builtin or a comprehension (count, filter, map, join, sort, clamp)."""

from __future__ import annotations

from random import Random

from agentevo.tasks.ladder.draw import int_list, int_lists, ints, one, sentences, word, words
from agentevo.tasks.ladder.template import Params, Template

SEPARATORS = ("-", ", ", " + ", "/", "_", " | ", "::", "; ", " and ")
SUFFIXES = ("ing", "ed", "ly", "er", "s", "tion", "en", "y")


def _bounds(rng: Random) -> Params:
    low = rng.randint(-20, 20)
    return {"low": low, "high": low + rng.randint(5, 40)}


TEMPLATES = [
    Template(
        name="count-char",
        statement='returns how many times the character `"$c"` occurs in the string `s`.',
        reference='def count_char(s):\n    return s.count("$c")\n',
        params=lambda r: {"c": r.choice("aeiorstnl")},
        inputs=lambda r, p: one([*sentences(r, 3), "", p["c"] * 3, "xyz"]),
    ),
    Template(
        name="keep-above",
        statement="returns a list of the numbers in `items` that are greater than $k, in their original order.",
        reference="def keep_above(items):\n    return [x for x in items if x > $k]\n",
        params=lambda r: {"k": r.randint(-5, 10)},
        inputs=lambda r, p: one([*int_lists(r, 4), [], [p["k"], p["k"] + 1]]),
    ),
    Template(
        name="add-to-each",
        statement="returns a new list with $k added to every number of the list `items`.",
        reference="def add_to_each(items):\n    return [x + $k for x in items]\n",
        params=lambda r: {"k": r.randint(2, 30)},
        inputs=lambda r, p: one([*int_lists(r, 3), [], [0]]),
    ),
    Template(
        name="count-words",
        statement="returns the number of words in the string `text`; words are separated by spaces.",
        reference="def count_words(text):\n    return len(text.split())\n",
        inputs=lambda r, p: one([*sentences(r, 3, 2, 9), word(r), "", "  two   words "]),
    ),
    Template(
        name="remove-vowels",
        statement="returns the string `s` with every vowel (a, e, i, o, u, lower or upper case) removed.",
        reference='def remove_vowels(s):\n    return "".join(c for c in s if c.lower() not in "aeiou")\n',
        inputs=lambda r, p: one([*sentences(r, 3, 1, 3), "AEIOU are vowels", "", "xyz"]),
    ),
    Template(
        name="sort-descending",
        statement="returns a new list with the numbers of `items` sorted from largest to smallest.",
        reference="def sort_descending(items):\n    return sorted(items, reverse=True)\n",
        inputs=lambda r, p: one([*int_lists(r, 4), [], [1, 2, 3]]),
    ),
    Template(
        name="join-words",
        statement='returns the strings of the list `words` joined into one string with `"$sep"` between them.',
        reference='def join_words(words):\n    return "$sep".join(words)\n',
        params=lambda r: {"sep": r.choice(SEPARATORS)},
        inputs=lambda r, p: one([words(r, 3), words(r, 2), words(r, 4), [word(r)], []]),
    ),
    Template(
        name="ends-with",
        statement='returns True when the string `s` ends with `"$suffix"`, else False.',
        reference='def ends_with(s):\n    return s.endswith("$suffix")\n',
        params=lambda r: {"suffix": r.choice(SUFFIXES)},
        inputs=lambda r, p: one(
            [word(r) + p["suffix"], *words(r, 3), p["suffix"], "", word(r) + p["suffix"]]
        ),
    ),
    Template(
        name="average-floor",
        statement=(
            "returns the average of the non-empty list of integers `items`, rounded down to a whole "
            "number (floor division of the sum by the count)."
        ),
        reference="def average_floor(items):\n    return sum(items) // len(items)\n",
        inputs=lambda r, p: one([*int_lists(r, 4, low=0, high=40), [5], [1, 2], [-3, 0]]),
    ),
    Template(
        name="count-multiples",
        statement="returns how many numbers in the list `items` are divisible by $k.",
        reference="def count_multiples(items):\n    return sum(1 for x in items if x % $k == 0)\n",
        params=lambda r: {"k": r.randint(2, 7)},
        inputs=lambda r, p: one([*int_lists(r, 3, low=0, high=40), [p["k"], 2 * p["k"], 1], []]),
    ),
    Template(
        name="longest-word",
        statement=(
            "returns the longest word of the string `text` (words are separated by spaces); when several "
            "words are equally long, the first of them."
        ),
        reference="def longest_word(text):\n    return max(text.split(), key=len)\n",
        inputs=lambda r, p: one([*sentences(r, 3), word(r), "ab cd ef"]),
    ),
    Template(
        name="clamp",
        statement=(
            "returns `n` limited to the range $low to $high: $low when `n` is smaller than $low, $high when "
            "`n` is larger than $high, otherwise `n` itself."
        ),
        reference="def clamp(n):\n    return min(max(n, $low), $high)\n",
        params=_bounds,
        inputs=lambda r, p: one([*ints(r, 4, -80, 80), p["low"] - 1, p["high"] + 1, p["low"] + 1]),
    ),
    Template(
        name="merge-sorted",
        statement=(
            "returns one list in increasing order holding all the numbers of the two increasing lists `a` "
            "and `b` (numbers in both are kept twice)."
        ),
        reference="def merge_sorted(a, b):\n    return sorted(a + b)\n",
        inputs=lambda r, p: [
            *((sorted(int_list(r)), sorted(int_list(r))) for _ in range(3)),
            ([], [1, 2]),
            ([5], []),
            ([], []),
        ],
    ),
    Template(
        name="product-of-list",
        statement="returns the product of the numbers in the list `items` (1 for an empty list).",
        reference=(
            "def product_of_list(items):\n    result = 1\n    for x in items:\n        result *= x\n"
            "    return result\n"
        ),
        inputs=lambda r, p: one([*int_lists(r, 3, low=-6, high=9, size=(2, 5)), [], [7], [2, 3]]),
        transfer=True,
    ),
    Template(
        name="smallest-even",
        statement="returns the smallest even number in the list `items`, or None when it holds no even number.",
        reference=(
            "def smallest_even(items):\n    evens = [x for x in items if x % 2 == 0]\n"
            "    return min(evens) if evens else None\n"
        ),
        inputs=lambda r, p: one(
            [*int_lists(r, 3, low=1, high=60), int_list(r, 1, 9), [1, 3, 5], [], [-4, 2]]
        ),
        transfer=True,
    ),
]
