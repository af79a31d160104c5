"""The one timing loop the benchmarks share: a warm-up call, then `repeats` timed calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

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


def interleaved_cpu_ms(runs: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """
    Median CPU milliseconds per call of each run, all called once a round in alternating order,
    so that a shared host's drift reaches every one of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(rounds):
        names = list(runs) if round_index % 2 else list(runs)[::-1]
        for name in names:
            times[name] += timed_runs(runs[name], 1, clock="cpu")
    return {name: 1000 * statistics.median(seconds) for name, seconds in times.items()}
