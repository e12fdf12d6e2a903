"""The statistics of a paired comparison over tasks, each a plain function of per-task numbers.

Tasks are the unit: every arm runs the same tasks, so a per-task difference removes how hard each task is, and
the confidence intervals resample tasks (what a new suite of the same kind would vary), not attempts. Every
random draw takes a seed, so the same rows always give the same numbers.

- ``bootstrap_ci``: the percentile bootstrap of a mean over tasks.
- ``sign_test``: the exact McNemar test of one attempt per task (a two-sided binomial sign test on the tasks
  where the two arms disagree).
- ``permutation_test``: the paired permutation test of several attempts per task (under no difference the two
  arms' labels are exchangeable within a task, so each task's difference keeps or flips its sign); exact by
  on the grid of possible sums when it is small enough, else a seeded Monte Carlo.
- ``min_detectable_effect``: the gain over a baseline that this many tasks and attempts detect with 80 % power.
- pass@k is :func:`agentevo.evaluate.results.pass_at_k` (the unbiased estimator), not repeated here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from fractions import Fraction
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, Field

RESAMPLES = 10_000  # bootstrap draws and Monte Carlo permutations (Monte Carlo error 0.002 at p = 0.05)
EXACT_WORK = 20_000_000  # tasks x grid points of sums the exact permutation test may go through


class Interval(BaseModel):
    """A two-sided confidence interval."""

    low: float
    high: float
    level: float = Field(0.95, gt=0, lt=1)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


class Method(str, Enum):
    """Which exact paired test gave a p-value."""

    mcnemar = "exact McNemar (sign) test"
    permutation = "exact paired permutation test"
    permutation_sampled = "paired permutation test (Monte Carlo)"


class PairedTest(BaseModel):
    """A paired test's verdict on per-task differences: two-sided, no difference under the null."""

    test: Method
    p_value: float = Field(ge=0, le=1)
    permutations: int | None = Field(None, description="Sign patterns drawn (Monte Carlo only).")


def bootstrap_ci(
    values: Sequence[float], *, seed: int, level: float = 0.95, resamples: int = RESAMPLES
) -> Interval:
    """The percentile bootstrap interval of the mean of ``values`` (one per task), ``resamples`` draws of as
    many tasks with replacement. Empty ``values``: the interval is [0, 0] (nothing was measured)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(low=0.0, high=0.0, level=level)
    draws = np.random.default_rng(seed).integers(0, data.size, size=(resamples, data.size))
    means = data[draws].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail], method="inverted_cdf")
    return Interval(low=float(low), high=float(high), level=level)


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided p-value of ``wins`` against ``losses`` (the tasks only one arm passed) when either arm
    is as likely to win each: the exact McNemar test. No disagreement at all: 1."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2**n)


def permutation_test(
    differences: Sequence[Fraction | float], *, seed: int, resamples: int = RESAMPLES
) -> PairedTest:
    """Two-sided p-value of the sum of per-task ``differences`` against its sign-flip distribution.

    Exact (the distribution of the sum over all 2^n sign patterns, built one task at a time on the grid of
    possible sums) within ``EXACT_WORK``, as pass rates over a few attempts are; otherwise ``resamples`` seeded
    patterns, the observed one counted (so p is never 0)."""
    nonzero = [Fraction(d) for d in differences if d != 0]
    scale = math.lcm(*(d.denominator for d in nonzero)) if nonzero else 1
    steps = [int(d * scale) for d in nonzero]
    observed = abs(sum(steps))
    if len(steps) * (2 * sum(abs(s) for s in steps) + 1) > EXACT_WORK:
        return _sampled([float(d) for d in nonzero], float(observed) / scale, seed, resamples)
    return PairedTest(test=Method.permutation, p_value=_sign_flip_tail(steps, observed))


def _sign_flip_tail(steps: list[int], observed: int) -> float:
    """P(|sum of +-steps| >= observed) with every sign pattern equally likely, over the grid of possible sums."""
    reach = sum(abs(s) for s in steps)
    chances = np.zeros(2 * reach + 1)
    chances[reach] = 1.0  # the sum 0, before any task
    for step in steps:
        chances = 0.5 * (
            np.roll(chances, step) + np.roll(chances, -step)
        )  # never wraps: the grid holds every sum
    sums = np.abs(np.arange(-reach, reach + 1))
    return float(min(1.0, chances[sums >= observed].sum()))


def _sampled(values: list[float], observed: float, seed: int, resamples: int) -> PairedTest:
    data = np.asarray(values)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, data.size))
    extreme = int(np.sum(np.abs(signs @ data) >= observed - 1e-9))
    p_value = (extreme + 1) / (resamples + 1)
    return PairedTest(test=Method.permutation_sampled, p_value=p_value, permutations=resamples)


def min_detectable_effect(
    tasks: int, attempts: int, baseline: float, *, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest gain in pass@1 over ``baseline`` that a two-sided test at ``alpha`` detects with ``power``,
    for ``tasks`` tasks of ``attempts`` attempts each; None when no gain up to a pass@1 of 1 is.

    The normal approximation of the paired difference of means, with per-task variance
    ``(p0 (1 - p0) + p1 (1 - p1)) / attempts`` (p1 = p0 + gain). It ignores how much tasks differ from each other,
    which pairing removes and which can only lower the variance, so the true effect detectable is no larger.
    Solving ``gain = z * sd(gain)`` for the gain is a quadratic:
    ``gain^2 (m + z^2) - z^2 (1 - 2 p0) gain - 2 z^2 p0 (1 - p0) = 0`` with ``m = tasks x attempts``.
    """
    if tasks < 1 or attempts < 1:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    m, z2, p0 = tasks * attempts, z * z, baseline
    a, b, c = m + z2, -z2 * (1 - 2 * p0), -2 * z2 * p0 * (1 - p0)
    gain = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return gain if 0 < gain <= 1 - p0 else None  # at a ceiling there is no gain to detect
