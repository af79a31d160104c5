"""A clock tests move by hand, so the batcher's timing is asserted without sleeping."""

from __future__ import annotations

import asyncio


class ManualClock:
    """Time stands still until `advance`; a wait ends when its event is set or its time comes."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._timers: list[tuple[float, asyncio.Future[None]]] = []
        self._waits: asyncio.Queue[float] | None = None

    def now(self) -> float:
        return self._now

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        loop = asyncio.get_running_loop()
        timer: asyncio.Future[None] = loop.create_future()
        self._timers.append((self._now + timeout, timer))
        self._waiting().put_nowait(timeout)
        waiter: asyncio.Future[object] = asyncio.ensure_future(event.wait())
        pending: set[asyncio.Future[object]] = {waiter, timer}  # type: ignore[arg-type]
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            self._timers = [entry for entry in self._timers if entry[1] is not timer]
        return event.is_set()

    async def next_wait(self) -> float:
        """The timeout of the next wait that starts (or started since the last call)."""
        return await self._waiting().get()

    def advance(self, seconds: float) -> None:
        """Move time on; waits whose time has come end."""
        self._now += seconds
        for deadline, timer in self._timers:
            if deadline <= self._now and not timer.done():
                timer.set_result(None)

    def _waiting(self) -> asyncio.Queue[float]:
        if self._waits is None:
            self._waits = asyncio.Queue()
        return self._waits
