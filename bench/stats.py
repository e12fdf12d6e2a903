"""What the benchmark scripts share: statistics and how a report is printed and kept."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"  # git-ignored


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


def write_report(report: dict, name: str, json_out: Path | None = None) -> Path:
    """Print ``report`` as JSON and keep it in ``json_out`` or ``bench/results/<name>-<time>.json``."""
    text = json.dumps(report, indent=2)
    print(text)
    path = json_out or RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"JSON written to {path}")
    return path
