"""The comparison's statistics against values computed by hand (the working is in each test)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from agentevo.compare.stats import (
    Interval,
    Method,
    bootstrap_ci,
    min_detectable_effect,
    permutation_test,
    sign_test,
)
from agentevo.evaluate.results import pass_at_k


@pytest.mark.parametrize(
    ("wins", "losses", "expected"),
    [
        (5, 0, 2 / 2**5),  # all 5 discordant tasks one way: 2 x 1/32
        (6, 0, 2 / 2**6),  # 6 one way: 2/64 = 0.03125, the smallest table that is significant at 0.05
        (8, 2, 2 * (1 + 10 + 45) / 1024),  # Bin(10, 1/2): P(X <= 2) = 56/1024, doubled
        (2, 8, 2 * (1 + 10 + 45) / 1024),  # two-sided: the same either way round
        (3, 3, 1.0),  # balanced: 2 x P(X <= 3) = 2 x 42/64 > 1, capped at 1
        (0, 0, 1.0),  # no discordant task: nothing to test
    ],
)
def test_exact_sign_test_on_small_tables(wins, losses, expected):
    assert sign_test(wins, losses) == pytest.approx(expected, abs=1e-15)


def test_permutation_test_counts_every_sign_pattern():
    # Two attempts per task: differences 1, 1, 1/2, -1/2 (and a tie, which carries no sign). Observed sum 2.
    # The 16 sign patterns: the +-1 pair sums to 2, 0, 0, -2 and the +-1/2 pair to 1, 0, 0, -1; |sum| >= 2 for
    # (2, 1), (2, 0) twice and their mirror images: 6 of 16.
    verdict = permutation_test([1, 1, Fraction(1, 2), Fraction(-1, 2), 0], seed=0)
    assert verdict.test is Method.permutation and verdict.permutations is None
    assert verdict.p_value == 6 / 16


def test_permutation_test_equals_the_sign_test_with_one_attempt():
    # With differences in {-1, 0, 1} the sign flips are the sign test: every table of up to 9 discordant tasks.
    for wins, losses in itertools.product(range(10), repeat=2):
        diffs = [1] * wins + [-1] * losses + [0] * 3
        assert permutation_test(diffs, seed=0).p_value == pytest.approx(sign_test(wins, losses), abs=1e-12)


def test_permutation_test_samples_when_the_sums_are_too_many():
    # 30 distinct irrational-like differences have 2^30 distinct sums: a seeded Monte Carlo, repeatable.
    diffs = [math.sqrt(i + 2) / 10 for i in range(30)]
    first, again = permutation_test(diffs, seed=7), permutation_test(diffs, seed=7)
    assert first.test is Method.permutation_sampled and first.permutations == 10_000
    assert first.p_value == again.p_value
    # All positive: only the observed pattern and its mirror reach the observed |sum|, so p is (1 + hits) / 10001
    # with hits ~ 10000 x 2 / 2^30, i.e. none: p = 1/10001.
    assert first.p_value == pytest.approx(1 / 10_001)


def test_bootstrap_of_half_passing_tasks_is_the_binomial_quantiles():
    # 20 tasks, 10 pass: a resample's mean is Bin(20, 1/2) / 20. Its 2.5 % quantile is 6 (P(X <= 5) = 0.0207 <
    # 0.025 <= P(X <= 6) = 0.0577) and its 97.5 % quantile 14 (P(X <= 13) = 0.942 < 0.975 <= P(X <= 14) = 0.979):
    # [0.30, 0.70]. With 10,000 resamples the empirical quantiles are those (the margins are 3 standard errors);
    # the seed makes it the same every time.
    interval = bootstrap_ci([0.0, 1.0] * 10, seed=0)
    assert (interval.low, interval.high) == (0.30, 0.70)
    assert interval == bootstrap_ci([1.0, 0.0] * 10, seed=0)


def test_bootstrap_edge_cases():
    assert bootstrap_ci([0.5] * 7, seed=3) == Interval(low=0.5, high=0.5)  # every resample has mean 0.5
    # Two tasks, 0 and 1: resample means 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4: the 95 % interval is [0, 1].
    assert bootstrap_ci([0.0, 1.0], seed=1) == Interval(low=0.0, high=1.0)
    assert bootstrap_ci([], seed=0) == Interval(low=0.0, high=0.0)


def test_bootstrap_depends_on_the_seed_only():
    values = [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 0.25]
    assert bootstrap_ci(values, seed=11) == bootstrap_ci(list(values), seed=11)
    draws = {(i.low, i.high) for i in (bootstrap_ci(values, seed=s, resamples=50) for s in range(20))}
    assert len(draws) > 1  # few resamples: the seed shows


def test_minimum_detectable_effect():
    # z = z_0.975 + z_0.8 = 1.959964 + 0.841621 = 2.801585; z^2 = 7.848879.
    # From a floor (p0 = 0) the quadratic is gain^2 (m + z^2) - z^2 gain = 0: gain = z^2 / (m + z^2).
    assert min_detectable_effect(200, 1, 0.0) == pytest.approx(7.848879 / 207.848879, rel=1e-6)  # 0.0378
    assert min_detectable_effect(100, 2, 0.0) == pytest.approx(
        7.848879 / 207.848879, rel=1e-6
    )  # tasks x attempts
    assert min_detectable_effect(7, 1, 0.0) == pytest.approx(7.848879 / 14.848879, rel=1e-6)  # 0.529
    # p0 = 1/2: gain^2 (m + z^2) = 2 z^2 / 4: gain = sqrt(z^2 / (2 (m + z^2))); m = 100: 0.1908.
    assert min_detectable_effect(100, 1, 0.5) == pytest.approx(
        math.sqrt(7.848879 / (2 * 107.848879)), rel=1e-6
    )
    assert min_detectable_effect(2, 1, 0.9) is None  # two tasks cannot show any gain from 0.9
    assert min_detectable_effect(500, 4, 1.0) is None  # nor any number from the ceiling
    assert (
        min_detectable_effect(1000, 4, 0.3)
        < min_detectable_effect(100, 4, 0.3)
        < min_detectable_effect(100, 1, 0.3)
    )


def test_pass_at_k_is_the_unbiased_estimator():
    # n = 5 attempts, c = 2 passed: pass@2 = 1 - C(3, 2) / C(5, 2) = 1 - 3/10.
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(4, 3, 2) == 1.0  # fewer failures than k: some pair always passes
