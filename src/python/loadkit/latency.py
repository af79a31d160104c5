"""Latency summaries for load reports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in milliseconds over one run."""

    count: int
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values.

    Written here rather than using `statistics.quantiles`: its float rounding can return a value
    above the maximum for equal samples; this one is clamped to its neighbours, so percentiles are
    monotone and always within [min, max].
    """
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    position = fraction * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    low, high = sorted_values[below], sorted_values[above]
    return min(high, max(low, low + (high - low) * (position - below)))


def summarize_latencies(latencies_ms: Sequence[float]) -> LatencySummary:
    """Summarize latencies of one run."""
    if not latencies_ms:
        raise ValueError("no latencies to summarize")
    ordered = sorted(float(value) for value in latencies_ms)
    if ordered[0] < 0:
        raise ValueError("latencies must be >= 0")
    return LatencySummary(
        count=len(ordered),
        mean_ms=math.fsum(ordered) / len(ordered),
        min_ms=ordered[0],
        p50_ms=percentile(ordered, 0.50),
        p90_ms=percentile(ordered, 0.90),
        p95_ms=percentile(ordered, 0.95),
        p99_ms=percentile(ordered, 0.99),
        max_ms=ordered[-1],
    )
