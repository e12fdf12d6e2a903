"""Level 3: a short loop with a little state (factorial, running totals, counting, fizzbuzz)."""

from __future__ import annotations

from random import Random

from agentevo.tasks.ladder.draw import int_list, int_lists, ints, one, sentence, sentences, word, words
from agentevo.tasks.ladder.template import Params, Template

FIZZ_WORDS = ("Fizz", "Buzz", "Bang", "Pop", "Zip", "Zap", "Ping", "Pong")


def _fizz(rng: Random) -> Params:
    a, b = rng.sample(range(2, 8), 2)
    first, second = rng.sample(FIZZ_WORDS, 2)
    return {"a": a, "b": b, "first": first, "second": second}


TEMPLATES = [
    Template(
        name="factorial",
        statement="returns `n!`, the product 1 * 2 * ... * n, for a whole number n >= 0 (`factorial(0)` is 1).",
        reference=(
            "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n"
            "    return result\n"
        ),
        inputs=lambda r, p: one([*ints(r, 3, 3, 15), 0, 1, 2]),
    ),
    Template(
        name="sequence-term",
        statement=(
            "returns term `n` (counting from 0) of the sequence that starts $a, $b and in which every "
            "later term is the sum of the two terms before it."
        ),
        reference=(
            "def sequence_term(n):\n    a, b = $a, $b\n    for _ in range(n):\n        a, b = b, a + b\n"
            "    return a\n"
        ),
        params=lambda r: {"a": r.randint(0, 5), "b": r.randint(1, 7)},
        inputs=lambda r, p: one([*ints(r, 3, 3, 25), 0, 1, 2]),
    ),
    Template(
        name="digit-sum",
        statement="returns the sum of the decimal digits of the integer `n` (of `-n` when `n` is negative).",
        reference="def digit_sum(n):\n    return sum(int(d) for d in str(abs(n)))\n",
        inputs=lambda r, p: one([*ints(r, 3, 10, 99999), -472, 0, 7]),
    ),
    Template(
        name="is-palindrome",
        statement=(
            "returns True when the string `s` reads the same forwards and backwards, ignoring upper/lower "
            "case and spaces, else False."
        ),
        reference=('def is_palindrome(s):\n    t = s.replace(" ", "").lower()\n    return t == t[::-1]\n'),
        inputs=lambda r, p: one([word(r), "Never odd or even", *words(r, 2), "Radar", "", "ab"]),
    ),
    Template(
        name="running-total",
        statement="returns the list of running totals of `items`: element i is the sum of items[0] to items[i].",
        reference=(
            "def running_total(items):\n    totals, total = [], 0\n    for x in items:\n        total += x\n"
            "        totals.append(total)\n    return totals\n"
        ),
        inputs=lambda r, p: one([*int_lists(r, 3), [], [5], [1, 1]]),
    ),
    Template(
        name="fizz-words",
        statement=(
            'returns a list of strings for the numbers 1 to `n`: `"$first$second"` for multiples of both $a '
            'and $b, `"$first"` for the other multiples of $a, `"$second"` for the other multiples of $b, and '
            "the number itself as a string otherwise."
        ),
        reference=(
            "def fizz_words(n):\n    out = []\n    for i in range(1, n + 1):\n"
            '        if i % $a == 0 and i % $b == 0:\n            out.append("$first$second")\n'
            '        elif i % $a == 0:\n            out.append("$first")\n'
            '        elif i % $b == 0:\n            out.append("$second")\n'
            "        else:\n            out.append(str(i))\n    return out\n"
        ),
        params=_fizz,
        inputs=lambda r, p: one([r.randint(8, 20), r.randint(2, 7), p["a"] * p["b"], p["a"], 1, 0]),
    ),
    Template(
        name="collatz-steps",
        statement=(
            "returns how many steps the Collatz rule takes to bring the positive integer `n` down to 1: "
            "an even number is halved, an odd number m becomes 3 * m + 1 (`collatz_steps(1)` is 0)."
        ),
        reference=(
            "def collatz_steps(n):\n    steps = 0\n    while n != 1:\n"
            "        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps\n"
        ),
        inputs=lambda r, p: one([*ints(r, 3, 2, 200), 1, 2, 27]),
    ),
    Template(
        name="dedupe",
        statement=(
            "returns the list `items` without repeated elements: the first occurrence of each element is "
            "kept, in order."
        ),
        reference=(
            "def dedupe(items):\n    seen, out = [], []\n    for x in items:\n        if x not in seen:\n"
            "            seen.append(x)\n            out.append(x)\n    return out\n"
        ),
        inputs=lambda r, p: one([*int_lists(r, 3, low=0, high=5, size=(4, 10)), words(r, 6), [], [1, 1]]),
    ),
    Template(
        name="letter-counts",
        statement=(
            "returns a dictionary that maps each character of the string `s` other than a space to the "
            "number of times it occurs in `s`."
        ),
        reference=(
            "def letter_counts(s):\n    counts = {}\n    for c in s:\n        if c != ' ':\n"
            "            counts[c] = counts.get(c, 0) + 1\n    return counts\n"
        ),
        inputs=lambda r, p: one([*sentences(r, 2, 1, 3), word(r), "", "aab"]),
    ),
    Template(
        name="gcd",
        statement="returns the greatest common divisor of the positive integers `a` and `b`.",
        reference="def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n",
        inputs=lambda r, p: [
            *((r.randint(1, 12) * k, r.randint(1, 12) * k) for k in ints(r, 3, 2, 9)),
            (7, 7),
            (1, 9),
            (12, 18),
        ],
    ),
    Template(
        name="first-index-above",
        statement=(
            "returns the index of the first number in the list `items` that is greater than $k, or -1 when "
            "there is none."
        ),
        reference=(
            "def first_index_above(items):\n    for i, x in enumerate(items):\n        if x > $k:\n"
            "            return i\n    return -1\n"
        ),
        params=lambda r: {"k": r.randint(0, 15)},
        inputs=lambda r, p: one([*int_lists(r, 3), [p["k"]] * 3, [], [p["k"] - 1, p["k"] + 1]]),
    ),
    Template(
        name="count-long-words",
        statement="returns how many words of the string `text` (separated by spaces) have more than $k letters.",
        reference="def count_long_words(text):\n    return len([w for w in text.split() if len(w) > $k])\n",
        params=lambda r: {"k": r.randint(3, 5)},
        inputs=lambda r, p: one([*sentences(r, 3, 3, 8), "", "a bb ccc dddd eeeee ffffff"]),
    ),
    Template(
        name="second-largest",
        statement=(
            "returns the second largest distinct number in the list `items`, or None when `items` holds fewer "
            "than two distinct numbers."
        ),
        reference=(
            "def second_largest(items):\n    distinct = sorted(set(items))\n"
            "    return distinct[-2] if len(distinct) > 1 else None\n"
        ),
        inputs=lambda r, p: one([*int_lists(r, 3), [4, 4, 1], [3, 3], [], [9, 2]]),
        transfer=True,
    ),
    Template(
        name="capitalize-words",
        statement=(
            "returns the lower-case string `text` with the first letter of every word in upper case (words "
            "are separated by single spaces)."
        ),
        reference=(
            'def capitalize_words(text):\n    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))\n'
        ),
        inputs=lambda r, p: one([*sentences(r, 3), sentence(r, 1, 1), ""]),
        transfer=True,
    ),
    Template(
        name="count-runs",
        statement=(
            "returns how many runs the list `items` has, where a run is a maximal block of consecutive "
            "equal elements (`[1, 1, 2, 1]` has 3 runs)."
        ),
        reference=(
            "def count_runs(items):\n    runs = 0\n    for i, x in enumerate(items):\n"
            "        if i == 0 or items[i - 1] != x:\n            runs += 1\n    return runs\n"
        ),
        inputs=lambda r, p: one([*int_lists(r, 3, low=0, high=2, size=(4, 10)), int_list(r), [], [5]]),
    ),
]
