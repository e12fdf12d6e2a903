"""Level 4: small classic algorithms (primes, binary search, run-length coding, brackets, Roman numerals)."""

from __future__ import annotations

from random import Random

from agentevo.tasks.ladder.draw import (
    int_lists,
    ints,
    letters,
    one,
    sentence,
    sentences,
    sorted_unique,
    word,
    words,
)
from agentevo.tasks.ladder.template import Inputs, Params, Template


def _searches(rng: Random, params: Params) -> Inputs:
    lists = [sorted_unique(rng) for _ in range(3)]
    present = [(items, rng.choice(items)) for items in lists]
    return [*present, (lists[0], 1000), ([], 3), ([4], 4), (lists[1], lists[1][0] - 1)]


def _balanced(rng: Random, depth: int = 3) -> str:
    """A random well-bracketed string with a few letters in it."""
    out = ""
    for _ in range(rng.randint(1, 3)):
        opening, closing = rng.choice([("(", ")"), ("[", "]"), ("{", "}")])
        inner = _balanced(rng, depth - 1) if depth > 1 and rng.random() < 0.6 else rng.choice(["", "x", "ab"])
        out += opening + inner + closing
    return out


def _brackets(rng: Random, params: Params) -> Inputs:
    good = _balanced(rng)
    cut = rng.randrange(len(good))
    broken = [good[:cut] + good[cut + 1 :], good + rng.choice(")]}"), rng.choice("([{") + good]
    return one([good, *broken, _balanced(rng), "([)]", "", "}{"])


def _anagrams(rng: Random, params: Params) -> Inputs:
    w = word(rng)
    shuffled = "".join(rng.sample(w, len(w)))
    return [(w, shuffled.upper()), (w, word(rng)), ("Dormitory", "dirty room"), ("abc", "abcc"), ("", "")]


def _nested(rng: Random) -> list:
    """A list of numbers and lists, nested up to three deep."""
    out: list = []
    for _ in range(rng.randint(2, 5)):
        out.append(rng.randint(0, 9) if rng.random() < 0.6 else [rng.randint(0, 9), [rng.randint(0, 9)]])
    return out


def _matrices(rng: Random, params: Params) -> Inputs:
    shapes = [(rng.randint(1, 4), rng.randint(1, 4)) for _ in range(3)] + [(2, 3), (1, 1)]
    return one([[ints(rng, cols, 0, 9) for _ in range(rows)] for rows, cols in shapes] + [[]])


TEMPLATES = [
    Template(
        name="is-prime",
        statement="returns True when the integer `n` is a prime number, else False (numbers below 2 are not prime).",
        reference=(
            "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n"
            "        if n % i == 0:\n            return False\n        i += 1\n    return True\n"
        ),
        inputs=lambda r, p: one([*ints(r, 3, 2, 500), r.choice([97, 101, 7919, 211]), 91, 1, 0, 2, -7]),
    ),
    Template(
        name="binary-search",
        statement=(
            "returns the index of `target` in `items`, a list of integers sorted in increasing order "
            "without repeats, or -1 when `target` is not in it."
        ),
        reference=(
            "def binary_search(items, target):\n    lo, hi = 0, len(items) - 1\n    while lo <= hi:\n"
            "        mid = (lo + hi) // 2\n        if items[mid] == target:\n            return mid\n"
            "        if items[mid] < target:\n            lo = mid + 1\n        else:\n            hi = mid - 1\n"
            "    return -1\n"
        ),
        inputs=_searches,
    ),
    Template(
        name="run-length",
        statement=(
            "returns the run-length encoding of the string `s`: every maximal run of equal characters "
            "becomes the character followed by the length of the run (`$sample` becomes `$encoded`)."
        ),
        reference=(
            "def run_length(s):\n    out = []\n    i = 0\n    while i < len(s):\n        j = i\n"
            "        while j < len(s) and s[j] == s[i]:\n            j += 1\n"
            "        out.append(s[i] + str(j - i))\n        i = j\n    return ''.join(out)\n"
        ),
        params=lambda r: r.choice(
            [{"sample": "aaab", "encoded": "a3b1"}, {"sample": "xyyy", "encoded": "x1y3"}]
        ),
        inputs=lambda r, p: one([letters(r, r.randint(4, 12)) for _ in range(3)] + ["", "z", "abc"]),
    ),
    Template(
        name="caesar",
        statement=(
            "returns the string `s` with each letter shifted $k places forward in the alphabet, wrapping "
            "around from z to a; upper-case letters stay upper case and other characters are unchanged."
        ),
        reference=(
            "def caesar(s):\n    out = []\n    for c in s:\n        if c.isalpha() and c.isascii():\n"
            "            base = ord('a') if c.islower() else ord('A')\n"
            "            out.append(chr((ord(c) - base + $k) % 26 + base))\n"
            "        else:\n            out.append(c)\n    return ''.join(out)\n"
        ),
        params=lambda r: {"k": r.randint(1, 25)},
        inputs=lambda r, p: one([*sentences(r, 2, 1, 3), "Hello, World!", "xyz", ""]),
    ),
    Template(
        name="to-roman",
        statement=(
            "returns the Roman numeral of the integer `n` (1 <= n <= 3999) in the standard subtractive "
            "form, e.g. 4 is IV, 9 is IX, 40 is XL, 90 is XC, 400 is CD and 900 is CM."
        ),
        reference=(
            "def to_roman(n):\n"
            "    values = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'),\n"
            "              (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]\n"
            "    out = ''\n    for value, numeral in values:\n        while n >= value:\n"
            "            out += numeral\n            n -= value\n    return out\n"
        ),
        inputs=lambda r, p: one([*ints(r, 3, 1, 3999), 4, 1994, 1]),
    ),
    Template(
        name="balanced-brackets",
        statement=(
            "returns True when every bracket in the string `s` - `()`, `[]` and `{}` - is closed by the "
            "matching bracket in the right order, else False; other characters are ignored."
        ),
        reference=(
            "def balanced_brackets(s):\n    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n"
            "    for c in s:\n        if c in '([{':\n            stack.append(c)\n"
            "        elif c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n"
            "                return False\n    return not stack\n"
        ),
        inputs=_brackets,
    ),
    Template(
        name="are-anagrams",
        statement=(
            "returns True when the strings `a` and `b` hold the same letters the same number of times, "
            "ignoring upper/lower case and spaces, else False."
        ),
        reference=(
            "def are_anagrams(a, b):\n    def key(s):\n        return sorted(s.replace(' ', '').lower())\n"
            "    return key(a) == key(b)\n"
        ),
        inputs=_anagrams,
    ),
    Template(
        name="flatten",
        statement=(
            "returns a flat list of all the numbers in the nested list `items` (lists may hold lists to any "
            "depth), from left to right."
        ),
        reference=(
            "def flatten(items):\n    out = []\n    for x in items:\n        if isinstance(x, list):\n"
            "            out.extend(flatten(x))\n        else:\n            out.append(x)\n    return out\n"
        ),
        inputs=lambda r, p: one([_nested(r), _nested(r), _nested(r), [], [[[]]], [1, [2, [3, [4]]]]]),
    ),
    Template(
        name="transpose",
        statement=(
            "returns the transpose of the matrix `rows` (a list of equal-length lists of numbers): row i of "
            "the result is column i of `rows`; the transpose of `[]` is `[]`."
        ),
        reference="def transpose(rows):\n    return [list(col) for col in zip(*rows)]\n",
        inputs=_matrices,
    ),
    Template(
        name="pascal-row",
        statement="returns row `n` of Pascal's triangle as a list (row 0 is `[1]`, row 1 is `[1, 1]`).",
        reference=(
            "def pascal_row(n):\n    row = [1]\n    for _ in range(n):\n"
            "        row = [a + b for a, b in zip([0] + row, row + [0])]\n    return row\n"
        ),
        inputs=lambda r, p: one([*ints(r, 3, 2, 12), 0, 1, 4]),
    ),
    Template(
        name="primes-below",
        statement="returns the list of all prime numbers smaller than `n`, in increasing order.",
        reference=(
            "def primes_below(n):\n    return [k for k in range(2, n) if all(k % d for d in range(2, int(k ** 0.5) + 1))]\n"
        ),
        inputs=lambda r, p: one([*ints(r, 3, 5, 80), 2, 3, 0, 30]),
    ),
    Template(
        name="rotate-right",
        statement=(
            "returns the list `items` rotated $k places to the right: each element moves $k places later, "
            "and elements that run off the end come back at the front (an empty list stays empty)."
        ),
        reference=(
            "def rotate_right(items):\n    if not items:\n        return []\n    k = $k % len(items)\n"
            "    return items[-k:] + items[:-k] if k else list(items)\n"
        ),
        params=lambda r: {"k": r.randint(1, 6)},
        inputs=lambda r, p: one([*int_lists(r, 3, size=(2, 9)), [1, 2, 3], [], [7]]),
    ),
    Template(
        name="top-words",
        statement=(
            "returns a list of the $k most frequent words of the string `text` (words are separated by "
            "spaces), most frequent first; words equally frequent come in alphabetical order. When `text` has "
            "fewer distinct words, all of them."
        ),
        reference=(
            "def top_words(text):\n    counts = {}\n    for w in text.split():\n"
            "        counts[w] = counts.get(w, 0) + 1\n"
            "    return sorted(counts, key=lambda w: (-counts[w], w))[:$k]\n"
        ),
        params=lambda r: {"k": r.randint(2, 3)},
        inputs=lambda r, p: one(
            [" ".join(r.choices(words(r, 4), k=r.randint(6, 12))) for _ in range(3)]
            + ["b a b", "", sentence(r)]
        ),
        transfer=True,
    ),
    Template(
        name="common-prefix",
        statement=(
            'returns the longest string that every string of the list `words` starts with (`""` when '
            "`words` is empty)."
        ),
        reference=(
            "def common_prefix(words):\n    if not words:\n        return ''\n    prefix = words[0]\n"
            "    for w in words[1:]:\n        while not w.startswith(prefix):\n            prefix = prefix[:-1]\n"
            "    return prefix\n"
        ),
        inputs=lambda r, p: one(
            [[w + word(r) for _ in range(3)] for w in ("in", "pre", "sta")]
            + [["flower", "flow", "flight"], words(r, 2), [], ["alone"]]
        ),
        transfer=True,
    ),
]
