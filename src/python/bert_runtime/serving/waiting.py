"""The texts waiting for a batch, in arrival order.

A batch forms around the oldest waiting text (so nothing starves) from a window of the oldest
texts of its task: its own request's texts first, then other requests whole, closest to it in
length first, so the batch pads little and a request finishes in the batch that starts it
unless it is larger than a batch or, on CPU, its lengths spread past the fill bound (its other
texts, older than any that came after it, anchor the batches that follow). None is run in part
and then dropped for time (BatchPlanner.choose, Submission.started). The window keeps batches in
arrival order under load: a text can be overtaken only by texts that came soon after it.
Texts whose future is done (their caller has gone, or their submission failed) or that were taken
into a batch leave lazily: the arrival order skips them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.tasks import TaskRequest

_arrival_numbers = itertools.count()
# The window a batch is chosen from, in batches of the budget's rows: wide enough to group texts
# by length, narrow enough that a text is overtaken only by texts that came soon after it.
WINDOW_BATCHES = 4


@dataclass(eq=False)
class Submission:
    """
    The texts of one submission, when it must have started (the batcher's clock), and its one
    future: all its results in order, or its first error. One future a submission, not one a
    text: a future, its callbacks and their loop handles cost more than the rest of a text's
    way through the batcher.
    """

    deadline: float
    future: asyncio.Future[list[Any]]
    texts: list[WaitingText] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    # Texts not yet resolved: the future is set when the last one is.
    pending: int = 0
    # Some text of it has been taken into a batch: the rest are no longer dropped for time (the
    # caller is waiting, and part of the work is done), only for a cancellation or a failure.
    started: bool = False

    def release(self) -> None:
        """
        Let go of the texts once settled (nothing reads them after that). Each text points back
        at its submission: left in place, that cycle would leave every submission, with its
        texts, token ids and results, to Python's cycle collector, which then took 15-25% of
        the engine process's CPU under load (bench/engine_link_cost.py, docs/BENCHMARKS.md).
        """
        self.texts = []

    @classmethod
    def of(
        cls,
        sequences: Sequence[np.ndarray],
        requests: Sequence[TaskRequest[Any]],
        now: float,
        deadline: float,
    ) -> Submission:
        """A submission of `sequences`, one request each, arriving `now` (on the running loop)."""
        submission = cls(deadline, asyncio.get_running_loop().create_future())
        submission.texts = [
            WaitingText(sequence, request, now, submission, index, len(sequence))
            for index, (sequence, request) in enumerate(zip(sequences, requests, strict=True))
        ]
        submission.results = [None] * len(sequences)
        submission.pending = len(sequences)
        if not sequences:  # nothing to wait for
            submission.future.set_result([])
        return submission


@dataclass(eq=False)
class WaitingText:
    """One text of a submission, from its arrival until it runs or is dropped."""

    sequence: np.ndarray
    request: TaskRequest[Any]
    enqueued: float
    submission: Submission
    # Its place among the submission's texts (and their results).
    index: int
    # Its token count (read in every choice and count: a field, not len() each time).
    length: int
    # Counted in the queue: until taken into a batch or resolved.
    waiting: bool = True
    # Failed for its deadline with its siblings: not counted again as cancelled.
    dropped: bool = False
    order: int = field(default_factory=lambda: next(_arrival_numbers))

    @property
    def future(self) -> asyncio.Future[list[Any]]:
        """Its submission's: done once every text is resolved, or one failed, or cancelled."""
        return self.submission.future

    @property
    def siblings(self) -> list[WaitingText]:
        """Every text of the submission (this one too): once one fails, theirs are not needed."""
        return self.submission.texts

    @property
    def deadline(self) -> float:
        """When this text must start: its submission's deadline, until the submission starts."""
        submission = self.submission
        return float("inf") if submission.started else submission.deadline

    @property
    def live(self) -> bool:
        return self.waiting and not self.submission.future.done()

    def resolve(self, result: object) -> None:
        submission = self.submission
        submission.results[self.index] = result
        submission.pending -= 1
        if not submission.pending and not submission.future.done():
            submission.future.set_result(submission.results)

    def fail(self, error: BaseException) -> None:
        """Fail this text's submission: its siblings' results are no longer wanted."""
        if not self.submission.future.done():
            self.submission.future.set_exception(error)


@dataclass(frozen=True)
class Choice:
    """The texts chosen for a batch, and the texts found late while choosing them."""

    texts: list[WaitingText]
    late: list[WaitingText]

    @property
    def longest(self) -> int:
        return max(text.length for text in self.texts)


class WaitingTexts:
    """The queue's texts and their counts (texts, real tokens)."""

    def __init__(self) -> None:
        self._arrivals: deque[WaitingText] = deque()
        self.count = 0
        self.tokens = 0
        # No waiting text is longer (one that left may have been): a bound for `may_fill`.
        self.longest = 0

    def add(self, texts: list[WaitingText]) -> None:
        self._arrivals.extend(texts)
        self.count += len(texts)
        lengths = [text.length for text in texts]
        self.tokens += sum(lengths)
        self.longest = max(self.longest, max(lengths, default=0))

    def may_fill(self, planner: BatchPlanner) -> bool:
        """
        Whether a batch chosen now might be full: False when every waiting text together, each
        padded to the longest, would still leave room for one more row. A cheap test that spares
        a choice (a walk over the window) for each arrival while a batch waits to fill.
        """
        return not planner.fits(self.count + 1, self.longest)

    def oldest(self, now: float) -> tuple[WaitingText | None, list[WaitingText]]:
        """The oldest live text, and the live texts found past their deadline on the way."""
        late: list[WaitingText] = []
        while self._arrivals:
            text = self._arrivals[0]
            if text.live and text.deadline >= now:
                return text, late
            self._arrivals.popleft()
            if text.live:
                late.append(text)
        return None, late

    def window(
        self, anchor: WaitingText, size: int, now: float
    ) -> tuple[list[WaitingText], list[WaitingText]]:
        """
        `anchor` (the oldest live text: it was in time when chosen, and it runs now even if its
        deadline passed meanwhile) and the next live texts of its task in arrival order, `size` in
        all, and the live texts of that task found past their deadline on the way.
        """
        kind = type(anchor.request)
        found: list[WaitingText] = [anchor]
        late: list[WaitingText] = []
        # The properties `live` and `deadline` spelt out, and worked out once for each run of a
        # submission's texts (they arrive together): this loop runs over the window for every
        # batch.
        last: Submission | None = None
        live = in_time = False
        for text in self._arrivals:
            if len(found) >= size:
                break
            if text is anchor or not text.waiting:
                continue
            submission = text.submission
            if submission is not last:
                last, live = submission, not submission.future.done()
                in_time = submission.started or submission.deadline >= now
            if live and type(text.request) is kind:
                (found if in_time else late).append(text)
        return found, late

    def choose(self, anchor: WaitingText, planner: BatchPlanner, now: float) -> Choice:
        """The batch `planner` chooses around `anchor` from its window (see the module's doc)."""
        window, late = self.window(anchor, WINDOW_BATCHES * planner.budget.max_rows, now)
        rows = planner.choose(
            [text.length for text in window],
            [id(text.submission) for text in window],
            0,
        )
        return Choice([window[row] for row in rows], late)

    def leave(self, text: WaitingText) -> bool:
        """Stop counting `text` (taken into a batch, or resolved); False if it had already left."""
        if not text.waiting:
            return False
        text.waiting = False
        self.count -= 1
        self.tokens -= text.length
        if not self.count:
            self.longest = 0
        return True

    def everything(self) -> list[WaitingText]:
        """Every text still in the arrival order (some may be done), emptying the queue."""
        texts = list(self._arrivals)
        self._arrivals.clear()
        return texts
