"""Level 5: small algorithms with a real idea in them (dynamic programming, graph search, interval sweeps)."""

from __future__ import annotations

from random import Random

from agentevo.tasks.ladder.draw import grid, int_list, ints, letters, one, word
from agentevo.tasks.ladder.template import Inputs, Params, Template

COIN_SETS = ([1, 5, 10], [1, 3, 4], [2, 5], [3, 7], [1, 6, 9], [4, 5, 11], [2, 3, 8], [5, 10, 25])


def _intervals(rng: Random, params: Params) -> Inputs:
    def draw() -> list[list[int]]:
        starts = ints(rng, rng.randint(2, 6), 0, 30)
        return [[s, s + rng.randint(0, 6)] for s in starts]

    return one([draw(), draw(), draw(), [[1, 3], [3, 5]], [[5, 6], [1, 2]], []])


def _grids(rng: Random, params: Params) -> Inputs:
    drawn = [grid(rng, rng.randint(2, 5), rng.randint(2, 6), "#", ".", 0.45) for _ in range(3)]
    return one([*drawn, ["#.#", ".#.", "#.#"], ["...", "..."], ["##", "##"]])


def _mazes(rng: Random, params: Params) -> Inputs:
    def draw() -> list[str]:
        rows = grid(rng, rng.randint(2, 5), rng.randint(2, 6), "#", ".", 0.25)
        rows[0] = "." + rows[0][1:]
        rows[-1] = rows[-1][:-1] + "."
        return rows

    return one([draw(), draw(), draw(), [".#", "#."], ["...", "##.", "..."], ["."]])


def _rpn(rng: Random, params: Params) -> Inputs:
    def draw() -> list[str]:
        tokens = [str(rng.randint(1, 9))]
        for _ in range(rng.randint(1, 3)):
            tokens += [str(rng.randint(1, 9)), rng.choice("+-*")]
        return tokens

    return one([draw(), draw(), draw(), ["2", "3", "4", "*", "+"], ["5", "1", "2", "+", "-"], ["7"]])


def _matrices(rng: Random, params: Params) -> Inputs:
    shapes = [(rng.randint(2, 4), rng.randint(2, 4)) for _ in range(3)] + [(1, 3), (3, 1)]
    return one([[ints(rng, cols, 0, 9) for _ in range(rows)] for rows, cols in shapes] + [[]])


def _bags(rng: Random, params: Params) -> Inputs:
    def draw() -> tuple[list[int], list[int]]:
        size = rng.randint(3, 6)
        return ints(rng, size, 1, 8), ints(rng, size, 1, 20)

    return [draw(), draw(), draw(), ([params["cap"] + 1], [99]), ([], []), ([1, 1], [3, 4])]


TEMPLATES = [
    Template(
        name="merge-intervals",
        statement=(
            "returns the intervals of the list `intervals` (each a list `[start, end]` with start <= end) "
            "with every group of overlapping or touching intervals merged into one, sorted by start."
        ),
        reference=(
            "def merge_intervals(intervals):\n    merged = []\n    for start, end in sorted(intervals):\n"
            "        if merged and start <= merged[-1][1]:\n            merged[-1][1] = max(merged[-1][1], end)\n"
            "        else:\n            merged.append([start, end])\n    return merged\n"
        ),
        inputs=_intervals,
    ),
    Template(
        name="increasing-run",
        statement=(
            "returns the length of the longest strictly increasing subsequence of the list `items` (its "
            "elements need not be next to each other)."
        ),
        reference=(
            "def increasing_run(items):\n    best = []\n    for i, x in enumerate(items):\n"
            "        best.append(1 + max([best[j] for j in range(i) if items[j] < x], default=0))\n"
            "    return max(best, default=0)\n"
        ),
        inputs=lambda r, p: one(
            [int_list(r, 0, 30, (5, 10)) for _ in range(3)] + [[], [3, 2, 1], [1, 2, 2, 3]]
        ),
    ),
    Template(
        name="count-islands",
        statement=(
            'returns the number of islands in `grid`, a list of equal-length strings of `"#"` (land) and '
            '`"."` (water): an island is a group of land cells joined up, down, left or right.'
        ),
        reference=(
            "def count_islands(grid):\n    seen = set()\n    islands = 0\n"
            "    for r, row in enumerate(grid):\n        for c, cell in enumerate(row):\n"
            "            if cell != '#' or (r, c) in seen:\n                continue\n"
            "            islands += 1\n            stack = [(r, c)]\n            seen.add((r, c))\n"
            "            while stack:\n                y, x = stack.pop()\n"
            "                for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):\n"
            "                    if 0 <= ny < len(grid) and 0 <= nx < len(row) and grid[ny][nx] == '#' "
            "and (ny, nx) not in seen:\n"
            "                        seen.add((ny, nx))\n                        stack.append((ny, nx))\n"
            "    return islands\n"
        ),
        inputs=_grids,
    ),
    Template(
        name="edit-distance",
        statement=(
            "returns the fewest single-character insertions, deletions and substitutions that turn the "
            "string `a` into the string `b`."
        ),
        reference=(
            "def edit_distance(a, b):\n    row = list(range(len(b) + 1))\n    for i, ca in enumerate(a, 1):\n"
            "        prev, row[0] = row[0], i\n        for j, cb in enumerate(b, 1):\n"
            "            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))\n"
            "    return row[-1]\n"
        ),
        inputs=lambda r, p: (
            [(word(r), word(r)) for _ in range(3)] + [("kitten", "sitting"), ("", "abc"), ("same", "same")]
        ),
    ),
    Template(
        name="min-coins",
        statement=(
            "returns the fewest coins of values $coins (as many of each as needed) that add up to exactly "
            "`amount`, or -1 when no combination does (0 coins make 0)."
        ),
        reference=(
            "def min_coins(amount):\n    coins = $coins\n    best = [0] + [None] * amount\n"
            "    for total in range(1, amount + 1):\n"
            "        options = [best[total - c] for c in coins if c <= total and best[total - c] is not None]\n"
            "        best[total] = min(options) + 1 if options else None\n"
            "    return -1 if best[amount] is None else best[amount]\n"
        ),
        params=lambda r: {"coins": r.choice(COIN_SETS)},
        inputs=lambda r, p: one([*ints(r, 4, 1, 60), 0, 1, 13]),
    ),
    Template(
        name="spiral-order",
        statement=(
            "returns the elements of the matrix `rows` (a list of equal-length lists) in clockwise spiral "
            "order, starting at the top-left corner and going right first (`[]` for an empty matrix)."
        ),
        reference=(
            "def spiral_order(rows):\n    rows = [list(row) for row in rows]\n    out = []\n    while rows:\n"
            "        out += rows.pop(0)\n        rows = [list(col) for col in zip(*rows)][::-1]\n    return out\n"
        ),
        inputs=_matrices,
    ),
    Template(
        name="eval-rpn",
        statement=(
            "returns the value of `tokens`, an arithmetic expression in reverse Polish notation: a list of "
            'strings, each a whole number or one of the operators `"+"`, `"-"` and `"*"`, which apply to '
            "the two values before them."
        ),
        reference=(
            "def eval_rpn(tokens):\n    stack = []\n    for t in tokens:\n        if t in '+-*':\n"
            "            b, a = stack.pop(), stack.pop()\n"
            "            stack.append(a + b if t == '+' else a - b if t == '-' else a * b)\n"
            "        else:\n            stack.append(int(t))\n    return stack[-1]\n"
        ),
        inputs=_rpn,
    ),
    Template(
        name="longest-unique",
        statement="returns the length of the longest run of consecutive characters of `s` in which no character repeats.",
        reference=(
            "def longest_unique(s):\n    best = start = 0\n    last = {}\n    for i, c in enumerate(s):\n"
            "        if last.get(c, -1) >= start:\n            start = last[c] + 1\n"
            "        last[c] = i\n        best = max(best, i - start + 1)\n    return best\n"
        ),
        inputs=lambda r, p: one(
            [letters(r, r.randint(6, 14), "abcde") for _ in range(3)] + ["", "aaaa", "abcabcbb"]
        ),
    ),
    Template(
        name="maze-steps",
        statement=(
            "returns the fewest moves (up, down, left or right, one cell each) from the top-left to the "
            'bottom-right cell of `grid`, a list of equal-length strings of `"."` (open) and `"#"` (wall), '
            "moving through open cells only; -1 when there is no way."
        ),
        reference=(
            "def maze_steps(grid):\n    goal = (len(grid) - 1, len(grid[0]) - 1)\n"
            "    frontier, seen, steps = [(0, 0)], {(0, 0)}, 0\n    while frontier:\n"
            "        if goal in frontier:\n            return steps\n        nxt = []\n"
            "        for y, x in frontier:\n"
            "            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):\n"
            "                if 0 <= ny <= goal[0] and 0 <= nx <= goal[1] and grid[ny][nx] == '.' "
            "and (ny, nx) not in seen:\n"
            "                    seen.add((ny, nx))\n                    nxt.append((ny, nx))\n"
            "        frontier, steps = nxt, steps + 1\n    return -1\n"
        ),
        inputs=_mazes,
    ),
    Template(
        name="knapsack",
        statement=(
            "returns the largest total value of items that fit together in a bag of capacity $cap: item i "
            "has weight `weights[i]` and value `values[i]`, each item is taken at most once, and the "
            "weights of the items taken add up to at most $cap."
        ),
        reference=(
            "def knapsack(weights, values):\n    best = [0] * ($cap + 1)\n"
            "    for w, v in zip(weights, values):\n        for c in range($cap, w - 1, -1):\n"
            "            best[c] = max(best[c], best[c - w] + v)\n    return best[$cap]\n"
        ),
        params=lambda r: {"cap": r.randint(6, 15)},
        inputs=_bags,
        transfer=True,
    ),
    Template(
        name="max-slice-sum",
        statement="returns the largest sum of a non-empty slice of consecutive elements of the non-empty list `items`.",
        reference=(
            "def max_slice_sum(items):\n    best = current = items[0]\n    for x in items[1:]:\n"
            "        current = max(x, current + x)\n        best = max(best, current)\n    return best\n"
        ),
        inputs=lambda r, p: one(
            [int_list(r, -10, 10, (4, 10)) for _ in range(3)] + [[-3, -1, -2], [5], [2, -1, 2]]
        ),
        transfer=True,
    ),
]
