"""Time for the batcher, given to it so tests can move time instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds, and waiting on an event with a timeout on that same time."""

    def now(self) -> float:
        ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Return True once `event` is set, False when `timeout` seconds pass first."""
        ...


class MonotonicClock:
    """The real clock: time.monotonic and asyncio's timers."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True
