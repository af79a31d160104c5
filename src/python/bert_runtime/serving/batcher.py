"""Asyncio dynamic batching: many concurrent submissions become few well-packed batches.

A batch is chosen around the oldest waiting text (so nothing starves) from a window of the oldest
texts of its task: its own request's texts first, then other requests whole, closest to it in
length first, within the engine's budget (waiting.py). It starts once full, by rows or tokens,
or once its oldest text has waited `max_queue_delay_ms`; a text that finds the model idle, or one
client calling in turn, starts at once. Inference runs on one worker thread (batch_run.py).

Admission is by time (admission.py): a caller's deadline is when it needs the results, so its
texts must start early enough for their own work to end by it (without one: within
`max_queue_wait_ms`). What would not start in time is refused at once (`Overloaded`, with the
seconds after which it would fit). A submission whose start time passes before any of its texts
runs, or whose caller has gone, is dropped before it reaches the model; once one of its texts has
run, the rest are no longer dropped for time. `max_queue_size` bounds memory; `close()` drains it.
A loop stopped otherwise fails what waits with `ShuttingDown` and tells its owner (`on_stop`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from bert_runtime.config import BatcherConfig
from bert_runtime.errors import DeadlineExceeded, ShuttingDown
from bert_runtime.serving.admission import QueueEstimate, admit, start_time
from bert_runtime.serving.batch_protocol import BatchRunner, BatchStats, DropReason
from bert_runtime.serving.batch_run import run_batch
from bert_runtime.serving.clock import Clock, MonotonicClock
from bert_runtime.serving.tasks import AnyResult, TaskRequest
from bert_runtime.serving.waiting import Submission, WaitingText, WaitingTexts

logger = logging.getLogger(__name__)
R = TypeVar("R", bound=AnyResult)


class Batcher:
    """Dynamic batcher over a BatchRunner; use as `async with Batcher(...)` or call `close()`."""

    def __init__(
        self,
        runner: BatchRunner,
        config: BatcherConfig,
        *,
        clock: Clock | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_drop: Callable[[str, int], None] | None = None,
        on_stop: Callable[[BaseException], None] | None = None,
        seconds_per_token: float | None = None,
    ) -> None:
        self._runner = runner
        self._planner = runner.planner
        self._config = config
        self._clock = clock or MonotonicClock()
        self._on_batch = on_batch
        self._on_drop = on_drop
        self._on_stop = on_stop
        self._queue = WaitingTexts()
        self._in_flight: list[WaitingText] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # One worker: a batch already uses every core (CPU) or the whole stream (CUDA).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bert-batcher")
        # The runner's speed until batches are measured (an Engine's, from its warm-up).
        self.estimate = QueueEstimate(seconds_per_token=seconds_per_token)
        self._last_finished = float("-inf")

    @property
    def queue_depth(self) -> int:
        """Texts waiting for a batch; one whose caller has gone stops counting at once."""
        return self._queue.count

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def idle(self) -> bool:
        """Nothing waiting and no batch running."""
        return not self._queue.count and not self._in_flight

    def abort_waiting(self, error: BaseException) -> None:
        """Fail every text still waiting with `error` (a shutdown out of time); none will run."""
        for text in self._queue.everything():
            text.fail(error)

    def now(self) -> float:
        """The time on this batcher's clock, which deadlines are given in."""
        return self._clock.now()

    def expected_wait_s(self) -> float:
        """How long a text submitted now would wait to start, by the current estimate."""
        return self.estimate.wait_s(self._queue.tokens, self._clock.now())

    async def __aenter__(self) -> Batcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="bert-batcher")

    async def submit(
        self, sequence: np.ndarray, request: TaskRequest[R], deadline: float | None = None
    ) -> R:
        """Queue one sequence; resolves to its result, or raises its own error."""
        (result,) = await self.submit_many([sequence], [request], deadline)
        return result

    async def submit_many(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest[R]],
        deadline: float | None = None,
    ) -> list[R]:
        """
        Queue several sequences, all or none, one request each; all the results, or the first
        error (the other sequences still waiting are then dropped, not run). `deadline` (on this
        batcher's clock): when the caller needs the results (they must start early enough to run
        by then); None: they must start within `max_queue_wait_ms`.
        """
        future = self.enqueue(sequences, requests, deadline)
        try:
            return list(await future)
        finally:
            future.cancel()  # a no-op once resolved

    def enqueue(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest[R]],
        deadline: float | None = None,
    ) -> asyncio.Future[list[R]]:
        """
        `submit_many` without awaiting: the submission's future (cancel it to drop its texts
        still waiting). Raises Overloaded or ShuttingDown at once, as `submit_many` does.
        """
        return self._enqueue(sequences, requests, deadline).future

    def _enqueue(
        self,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest[Any]],
        deadline: float | None,
    ) -> Submission:
        """Admit every sequence or none, without awaiting: submissions cannot interleave."""
        if self._closing:
            raise ShuttingDown("the batcher is shutting down")
        if len(requests) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(requests)} requests")
        self.start()
        now = self._clock.now()
        tokens = sum(len(sequence) for sequence in sequences)
        default_wait = self._config.max_queue_wait_ms / 1000
        start_by = start_time(self.estimate, tokens, deadline, now, default_wait)
        queue = self._queue
        admit(
            self.estimate,
            queue.count,
            queue.tokens,
            len(sequences),
            self._config.max_queue_size,
            now,
            start_by,
        )
        submission = Submission.of(sequences, requests, now, start_by)
        submission.future.add_done_callback(functools.partial(self._settled, submission))
        self._queue.add(submission.texts)
        self._wakeup.set()
        return submission

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
            for text in [*self._in_flight, *self._queue.everything()]:
                text.fail(stopped)

    async def _serve(self) -> None:
        delay = self._config.max_queue_delay_ms / 1000
        while True:
            oldest, late = self._queue.oldest(self._clock.now())
            for text in late:
                self._drop_late(text)
            if oldest is None:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = self._clock.now()
            # Under load (a batch of several ended within the delay before it came) wait for more.
            busy = oldest.enqueued - self._last_finished < delay
            remaining = oldest.enqueued + delay - now if busy else 0.0
            waits = not self._closing and remaining > 0
            if waits and not self._queue.may_fill(self._planner):
                self._wakeup.clear()  # no batch could be full yet: as below, without choosing
                await self._clock.wait(self._wakeup, remaining)
                continue
            choice = self._queue.choose(oldest, self._planner, now)
            for text in choice.late:
                self._drop_late(text)
            if waits and self._planner.fits(len(choice.texts) + 1, choice.longest):
                # Not full (by rows, or by tokens: long texts fill it first): wait for a new text
                # or a cancelled one (the oldest may change), else until the oldest's delay is up.
                self._wakeup.clear()
                await self._clock.wait(self._wakeup, remaining)
                continue
            batch = self._batch_of(choice.texts)
            if batch:
                await self._execute(batch)

    def _batch_of(self, chosen: list[WaitingText]) -> list[WaitingText]:
        """The chosen texts still wanted, in arrival order, out of the queue."""
        batch: list[WaitingText] = []
        for text in chosen:
            if text.future.done():  # dropped with a late sibling while choosing
                self._resolved(text)  # now: its submission's callback may not have run yet
            else:
                self._queue.leave(text)
                text.submission.started = True
                batch.append(text)
        return sorted(batch, key=lambda text: text.order)

    def _drop_late(self, text: WaitingText) -> None:
        """Fail `text`'s submission: its deadline passed before it started."""
        if not text.live:  # a sibling already dropped it
            return
        waiting = [sibling for sibling in text.siblings if sibling.live]
        for sibling in waiting:
            sibling.dropped = True
        waited = self._clock.now() - text.enqueued
        message = f"waited {waited:.2f}s, too long to finish in time"
        text.fail(DeadlineExceeded(message, self.expected_wait_s()))
        if self._on_drop is not None:
            self._on_drop(DropReason.DEADLINE, len(waiting))

    def _settled(self, submission: Submission, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:  # else every text has run
            for text in submission.texts:
                self._resolved(text)
        submission.release()

    def _resolved(self, text: WaitingText) -> None:
        """Its submission is done: if the text still waits, it will not run (cancelled)."""
        if self._queue.leave(text):
            self._wakeup.set()  # the wait may have been anchored on this text's delay
            if self._on_drop is not None and not text.dropped:
                self._on_drop(DropReason.CANCELLED, 1)

    async def _execute(self, batch: list[WaitingText]) -> None:
        started = self._clock.now()
        real = sum(text.length for text in batch)
        self._in_flight = batch
        self.estimate.batch_started(real, started)
        failed = await run_batch(self._runner, self._executor, batch)
        self._in_flight = []
        finished = self._clock.now()
        elapsed = finished - started
        if len(batch) > 1:  # a lone text is no sign of company coming (one client, in turn)
            self._last_finished = finished
        self.estimate.batch_finished(real, elapsed)
        if self._on_batch is not None:
            padded = self._planner.padded_length(max(text.length for text in batch)) * len(batch)
            wait = max(started - text.enqueued for text in batch)
            stats = BatchStats(len(batch), real, padded, wait, elapsed, failed)
            try:
                self._on_batch(stats)
            except Exception:  # - metrics must never stop the serving loop
                logger.exception("the on_batch callback failed; the batch's results stand")
