"""Asyncio dynamic batching: many concurrent single-text submissions become few well-packed batches.

Bounds: max batch size, a token budget counted on the padded shape, a maximum queue delay (cut
short once the next batch is full, by count or by tokens) and a bounded queue (full ->
`Overloaded`). Batches are built around the oldest waiting item (so nothing starves) from the
waiting items of the same task whose lengths are closest to it, so padding stays small. Inference
runs on a worker thread, off the event loop. If a batch fails, its items are retried one by one,
so one bad item fails only its own future. A failing `on_batch` callback is logged and ignored. If
the loop ever stops for another reason, every waiting submission fails with `ShuttingDown` instead
of waiting forever, and `on_stop` tells the owner (who should stop serving). `close()` stops intake
and drains what is queued.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bert_runtime.config import BatcherConfig
from bert_runtime.errors import Overloaded, ShuttingDown
from bert_runtime.serving.tasks import TaskRequest, TaskResult
from bert_runtime.serving.tokenizer import padded_length

logger = logging.getLogger(__name__)


class BatchRunner(Protocol):
    """What runs a batch: `Engine.run` in production, anything with the same shape in tests."""

    def run(
        self, sequences: Sequence[np.ndarray], requests: Sequence[TaskRequest], multiple: int
    ) -> list[TaskResult]:
        ...


@dataclass(frozen=True)
class BatchStats:
    """One executed batch, for metrics."""

    size: int
    real_tokens: int
    padded_tokens: int
    max_queue_wait_s: float
    run_s: float
    failed: bool


@dataclass(eq=False)
class _Item:
    sequence: np.ndarray
    request: TaskRequest
    future: asyncio.Future[TaskResult]
    enqueued: float = field(default_factory=time.monotonic)
    # The other items of the same submit_many call: once one fails, theirs are not needed.
    siblings: list[_Item] = field(default_factory=list)
    # Counted in the batcher's queue depth: until taken into a batch or resolved.
    waiting: bool = True

    @property
    def length(self) -> int:
        return len(self.sequence)


class Batcher:
    """Dynamic batcher over a BatchRunner; use as `async with Batcher(...)` or call `close()`."""

    def __init__(
        self,
        runner: BatchRunner,
        config: BatcherConfig,
        *,
        max_positions: int,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_stop: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._runner = runner
        self._config = config
        self._max_positions = max_positions
        self._on_batch = on_batch
        self._on_stop = on_stop
        self._pending: list[_Item] = []
        # Waiting items whose futures are not done (cancelled ones may still sit in _pending).
        self._waiting = 0
        self._in_flight: list[_Item] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # One worker: a batch already uses every core (CPU) or the whole stream (CUDA).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bert-batcher")
        self._items_per_second = 0.0

    @property
    def queue_depth(self) -> int:
        """Items waiting for a batch; one whose request was cancelled stops counting at once."""
        return self._waiting

    @property
    def closed(self) -> bool:
        return self._closing

    async def __aenter__(self) -> Batcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="bert-batcher")

    async def submit(self, sequence: np.ndarray, request: TaskRequest) -> TaskResult:
        """Queue one sequence; resolves to its result, or raises its own error."""
        (item,) = self._enqueue([sequence], request)
        return await item.future

    async def submit_many(
        self, sequences: Sequence[np.ndarray], request: TaskRequest | Sequence[TaskRequest]
    ) -> list[TaskResult]:
        """
        Queue several sequences, all or none, with one request for all or one each; all the
        results, or the first error (the other sequences still waiting are then dropped, not run).
        """
        items = self._enqueue(sequences, request)
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        finally:
            for item in items:
                item.future.cancel()  # a no-op for resolved ones

    def _enqueue(
        self, sequences: Sequence[np.ndarray], request: TaskRequest | Sequence[TaskRequest]
    ) -> list[_Item]:
        """
        Admit every sequence or none, without awaiting: concurrent requests cannot interleave.
        """
        if self._closing:
            raise ShuttingDown("the batcher is shutting down")
        self.start()
        depth = self.queue_depth
        if depth + len(sequences) > self._config.max_queue_size:
            raise Overloaded(depth, self._retry_after(depth + len(sequences)))
        requests = [request] * len(sequences) if isinstance(request, TaskRequest) else request
        if len(requests) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(requests)} requests")
        loop = asyncio.get_running_loop()
        items = [
            _Item(sequence, each, loop.create_future())
            for sequence, each in zip(sequences, requests, strict=True)
        ]
        for item in items:
            item.siblings = items
            item.future.add_done_callback(functools.partial(self._resolved, item))
        self._pending.extend(items)
        self._waiting += len(items)
        self._wakeup.set()
        return items

    async def close(self) -> None:
        """Stop accepting work, finish everything queued, release the worker thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            # wait() rather than await: a loop that died was logged, and close() must still finish.
            await asyncio.wait({self._task})
            if not self._task.cancelled():
                self._task.exception()  # retrieved, so asyncio does not report it a second time
        self._executor.shutdown(wait=True)

    def _retry_after(self, depth: int) -> float:
        rate = self._items_per_second or 1.0
        return min(30.0, max(0.1, depth / rate))

    # --- the loop --------------------------------------------------------------------------------
    async def _loop(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            logger.exception("the batcher loop stopped; failing every waiting submission")
            if self._on_stop is not None:
                self._on_stop(error)
            raise
        finally:
            self._closing = True
            stopped = ShuttingDown("the batcher stopped")
            for item in [*self._in_flight, *self._pending]:
                _fail(item, stopped)
            self._pending = []

    async def _serve(self) -> None:
        delay = self._config.max_queue_delay_ms / 1000
        while True:
            self._pending = [item for item in self._pending if not item.future.done()]
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # The live count: texts cancelled since the list was pruned do not fill a batch.
            while not self._closing and not self._batch_is_full():
                # The oldest live item sets the deadline: one cancelled while the loop waits
                # (which wakes it) no longer hurries the others into a smaller batch.
                oldest = next((i for i in self._pending if not i.future.done()), None)
                if oldest is None:
                    break
                remaining = oldest.enqueued + delay - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take_batch()
            if batch:
                await self._execute(batch)

    def _resolved(self, item: _Item, future: asyncio.Future[TaskResult]) -> None:
        if item.waiting and future.cancelled():
            self._wakeup.set()  # the wait may have been anchored on this item's deadline
        self._stop_waiting(item)

    def _stop_waiting(self, item: _Item) -> None:
        if item.waiting:
            item.waiting = False
            self._waiting -= 1

    def _padded(self, longest: int) -> int:
        return padded_length(longest, self._config.pad_to_multiple_of, self._max_positions)

    def _batch_is_full(self) -> bool:
        """
        Whether the next batch could take no text that may yet arrive: full by count, or by the
        token budget (long texts fill it before the count), so waiting could not make it bigger.
        """
        if self._waiting >= self._config.max_batch_size:
            return True
        live = [item for item in self._pending if not item.future.done()]
        if not live:
            return False
        chosen = self._select(live)
        longest = max(item.length for item in chosen)
        return self._padded(longest) * (len(chosen) + 1) > self._config.max_batch_tokens

    def _take_batch(self) -> list[_Item]:
        """The next batch (see _select), out of the queue."""
        live = [item for item in self._pending if not item.future.done()]
        if not live:
            self._pending = []
            return []
        chosen = self._select(live)
        for item in chosen:
            self._stop_waiting(item)
        taken = set(map(id, chosen))
        self._pending = [item for item in live if id(item) not in taken]
        # Longest first is irrelevant to the model; arrival order keeps logs readable.
        return sorted(chosen, key=lambda item: item.enqueued)

    def _select(self, live: list[_Item]) -> list[_Item]:
        """
        The oldest live item plus same-task neighbours by length, within size and token budget.
        """
        anchor = live[0]
        candidates = sorted(
            (item for item in live if isinstance(item.request, type(anchor.request))),
            key=lambda item: item.length,
        )
        low = high = candidates.index(anchor)
        chosen = [anchor]
        longest = anchor.length
        while len(chosen) < self._config.max_batch_size:
            options = []
            if low > 0:
                options.append((anchor.length - candidates[low - 1].length, -1))
            if high < len(candidates) - 1:
                options.append((candidates[high + 1].length - anchor.length, +1))
            added = False
            for _, side in sorted(options):
                item = candidates[low - 1] if side < 0 else candidates[high + 1]
                new_longest = max(longest, item.length)
                if self._padded(new_longest) * (len(chosen) + 1) <= self._config.max_batch_tokens:
                    chosen.append(item)
                    longest = new_longest
                    if side < 0:
                        low -= 1
                    else:
                        high += 1
                    added = True
                    break
            if not added:
                break
        return chosen

    async def _execute(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        wait = max(started - item.enqueued for item in batch)
        failed = False
        self._in_flight = batch
        try:
            results = await loop.run_in_executor(self._executor, self._run, batch)
            for item, result in zip(batch, results, strict=True):
                _resolve(item, result)
        except Exception as error:  # - isolated per item below
            failed = True
            if len(batch) == 1:
                _fail(batch[0], error)
            else:
                logger.warning(
                    "batch of %d failed (%s); retrying items one by one", len(batch), error
                )
                for item in batch:
                    if item.future.done():  # cancelled, or a sibling already failed
                        continue
                    try:
                        (result,) = await loop.run_in_executor(self._executor, self._run, [item])
                        _resolve(item, result)
                    except Exception as item_error:  # - belongs to this item only
                        _fail(item, item_error)
        self._in_flight = []
        elapsed = time.monotonic() - started
        if elapsed > 0:
            rate = len(batch) / elapsed
            self._items_per_second = (
                rate if not self._items_per_second else (0.8 * self._items_per_second + 0.2 * rate)
            )
        if self._on_batch is not None:
            real = sum(item.length for item in batch)
            padded = self._padded(max(item.length for item in batch)) * len(batch)
            stats = BatchStats(len(batch), real, padded, wait, elapsed, failed)
            try:
                self._on_batch(stats)
            except Exception:  # - metrics must never stop the serving loop
                logger.exception("the on_batch callback failed; the batch's results stand")

    def _run(self, batch: list[_Item]) -> list[TaskResult]:
        return self._runner.run(
            [item.sequence for item in batch],
            [item.request for item in batch],
            self._config.pad_to_multiple_of,
        )


def _resolve(item: _Item, result: TaskResult) -> None:
    if not item.future.done():
        item.future.set_result(result)


def _fail(item: _Item, error: BaseException) -> None:
    """Fail `item`; its siblings' results are no longer wanted, so they leave the queue at once."""
    if not item.future.done():
        item.future.set_exception(error)
    for sibling in item.siblings:
        sibling.future.cancel()  # a no-op for resolved ones
