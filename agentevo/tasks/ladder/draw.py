"""Small random draws the templates build their test inputs from: numbers, lists, words, sentences."""

from __future__ import annotations

from random import Random
from typing import Any

WORDS = (
    "apple", "river", "stone", "cloud", "tiger", "lemon", "house", "green", "music", "paper",
    "ocean", "bread", "chair", "light", "dream", "plant", "sugar", "train", "water", "zebra",
    "moon", "sun", "kite", "fox", "owl", "bee", "jam", "cup", "map", "pen",
    "banana", "garden", "window", "planet", "silver", "rocket", "orange", "castle", "pepper", "winter",
    "level", "radar", "noon", "civic", "kayak", "reading", "jumped", "slowly", "teacher", "station",
)  # fmt: skip


def one(values: list[Any]) -> list[tuple[Any, ...]]:
    """Argument tuples for a one-argument function."""
    return [(value,) for value in values]


def ints(rng: Random, count: int, low: int = -50, high: int = 50) -> list[int]:
    return [rng.randint(low, high) for _ in range(count)]


def int_list(rng: Random, low: int = -20, high: int = 20, size: tuple[int, int] = (3, 8)) -> list[int]:
    return ints(rng, rng.randint(*size), low, high)


def int_lists(rng: Random, count: int, **shape: Any) -> list[list[int]]:
    return [int_list(rng, **shape) for _ in range(count)]


def sorted_unique(rng: Random, size: tuple[int, int] = (3, 9), low: int = -30, high: int = 60) -> list[int]:
    return sorted(rng.sample(range(low, high), rng.randint(*size)))


def word(rng: Random) -> str:
    return rng.choice(WORDS)


def words(rng: Random, count: int) -> list[str]:
    return [word(rng) for _ in range(count)]


def sentence(rng: Random, low: int = 3, high: int = 7) -> str:
    return " ".join(words(rng, rng.randint(low, high)))


def sentences(rng: Random, count: int, low: int = 3, high: int = 7) -> list[str]:
    return [sentence(rng, low, high) for _ in range(count)]


def letters(rng: Random, length: int, alphabet: str = "abc") -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def grid(rng: Random, rows: int, cols: int, full: str, empty: str, share: float) -> list[str]:
    """``rows`` strings of ``cols`` cells, each ``full`` with probability ``share``, else ``empty``."""
    return ["".join(full if rng.random() < share else empty for _ in range(cols)) for _ in range(rows)]
