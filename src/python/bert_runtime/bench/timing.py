"""The one timing loop the benchmarks share: a warm-up call, then `repeats` timed calls."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed_runs(run: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call, after one untimed warm-up (first-call allocation and kernel choice)."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times
