"""Statistics shared by the benchmark scripts."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (as numpy's default); works for any n >= 1."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stats(samples_ms: list[float]) -> dict:
    """n, p50, p90, mean, min, max of millisecond samples."""
    return {
        "n": len(samples_ms),
        "p50": percentile(samples_ms, 0.5),
        "p90": percentile(samples_ms, 0.9),
        "mean": statistics.fmean(samples_ms),
        "min": min(samples_ms),
        "max": max(samples_ms),
    }
