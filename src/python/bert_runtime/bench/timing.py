"""The one timing loop the benchmarks share: a warm-up call, then `repeats` timed calls."""

from __future__ import annotations

import time
from collections.abc import Callable

# "wall": elapsed seconds. "cpu": this process's CPU seconds, for a host shared with other work
# (with one thread: what the work itself costs, whatever else runs beside it).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def timed_runs(run: Callable[[], object], repeats: int, clock: str = "wall") -> list[float]:
    """Seconds per call, after one untimed warm-up (first-call allocation and kernel choice)."""
    now = CLOCKS[clock]
    run()
    times = []
    for _ in range(repeats):
        started = now()
        run()
        times.append(now() - started)
    return times
