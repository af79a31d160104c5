"""Median wall time of several calls taken in turn, for the timings warm-up makes on CPU.

Taken in turn, round by round, so a slow spell of the host meets every call alike: the thread
split compares two sessions this way (thread_split.py) and the fill rule two batch sizes
(run_overhead.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def medians_in_turn(calls: Sequence[Callable[[], object]], rounds: int) -> list[float]:
    """Each call's median wall seconds over `rounds` rounds, one run of every call a round."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for call, taken in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            taken.append(time.perf_counter() - started)
    return [statistics.median(taken) for taken in times]
