"""The texts waiting for a batch: in arrival order, and per task type sorted by length.

The batcher needs two views of its queue: the oldest text (a batch forms around it, so nothing
starves) and, around that text, its neighbours in length (so the batch pads little). Keeping
both as the queue changes, rather than sorting the whole queue for every batch, makes forming a
batch cost O(log n + batch) instead of O(n log n). Texts whose future is done (their caller has
gone, or their submission failed) leave lazily: the arrival order skips them, and a task's sorted
column is pruned the next time it is needed.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import operator
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bert_runtime.serving.planner import BatchPlanner
from bert_runtime.serving.tasks import TaskRequest

_arrival_numbers = itertools.count()


@dataclass(eq=False)
class Submission:
    """The texts of one submission, and when it must have started (the batcher's clock)."""

    deadline: float
    texts: list[WaitingText] = field(default_factory=list)
    # Some text of it has been taken into a batch: the rest are no longer dropped for time (the
    # caller is waiting, and part of the work is done), only for a cancellation or a failure.
    started: bool = False


@dataclass(eq=False)
class WaitingText:
    """One text of a submission, from its arrival until it runs or is dropped."""

    sequence: np.ndarray
    request: TaskRequest[Any]
    future: asyncio.Future[Any]
    enqueued: float
    submission: Submission
    # Counted in the queue: until taken into a batch or resolved.
    waiting: bool = True
    # Failed for its deadline with its siblings: not counted again as cancelled.
    dropped: bool = False
    order: int = field(default_factory=lambda: next(_arrival_numbers))

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
    def length(self) -> int:
        return len(self.sequence)

    @property
    def live(self) -> bool:
        return self.waiting and not self.future.done()

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.length, self.order)

    def resolve(self, result: object) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def fail(self, error: BaseException) -> None:
        """Fail this text; its siblings' results are no longer wanted, so they are cancelled."""
        if not self.future.done():
            self.future.set_exception(error)
        for sibling in self.siblings:
            sibling.future.cancel()  # a no-op for resolved ones


_SORT_KEY = operator.attrgetter("sort_key")


@dataclass(frozen=True)
class Run:
    """Rows low..high of a task's length-sorted column: the batch around an anchor."""

    column: list[WaitingText]
    low: int
    high: int

    @property
    def rows(self) -> int:
        return self.high - self.low + 1

    @property
    def longest(self) -> int:
        return self.column[self.high].length


class WaitingTexts:
    """The queue's texts and their counts (texts, real tokens)."""

    def __init__(self) -> None:
        self._arrivals: deque[WaitingText] = deque()
        self._by_length: dict[type, list[WaitingText]] = {}
        # Per request type: whether its column may hold done texts (pruned when next needed).
        self._stale: set[type] = set()
        self.count = 0
        self.tokens = 0

    def add(self, texts: list[WaitingText]) -> None:
        for text in texts:
            self._arrivals.append(text)
            column = self._by_length.setdefault(type(text.request), [])
            bisect.insort(column, text, key=_SORT_KEY)
            self.tokens += text.length
        self.count += len(texts)

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

    def run_around(self, anchor: WaitingText, planner: BatchPlanner) -> Run:
        """The batch `planner` grows around `anchor` among the waiting texts of its task."""
        kind = type(anchor.request)
        column = self._by_length[kind]
        if kind in self._stale:
            column[:] = [text for text in column if text.live]
            self._stale.discard(kind)
        at = bisect.bisect_left(column, anchor.sort_key, key=_SORT_KEY)
        low, high = planner.grow(lambda i: column[i].length, len(column), at)
        return Run(column, low, high)

    def take(self, run: Run) -> list[WaitingText]:
        """The run's texts, out of the queue (the arrival order drops them lazily)."""
        taken = run.column[run.low : run.high + 1]
        del run.column[run.low : run.high + 1]
        return taken

    def leave(self, text: WaitingText, taken: bool = False) -> bool:
        """
        Stop counting `text`, taken into a batch (already out of its column) or resolved while
        waiting (still in it, so the column needs pruning); False if it had already left.
        """
        if not text.waiting:
            return False
        text.waiting = False
        self.count -= 1
        self.tokens -= text.length
        if not taken:
            self._stale.add(type(text.request))
        return True

    def everything(self) -> list[WaitingText]:
        """Every text still in the arrival order (some may be done), emptying the queue."""
        texts = list(self._arrivals)
        self._arrivals.clear()
        self._by_length.clear()
        self._stale.clear()
        return texts
