"""Admission by time: how long queued work will take, and whether new work would start in time.

The batcher admits work by time (would it start before its deadline?), so it needs the wait ahead
of a new text: the rest of the batch running now plus the queued tokens at the measured seconds
per token. Seconds per token is an exponentially weighted mean over executed batches, so it
follows a model's real speed on this machine, batching overhead and padding included. Until the
first batch has run the estimate is the engine's warm-up measurement, if it has one; without either,
nothing is refused for time.
"""

from __future__ import annotations

from bert_runtime.errors import BudgetTooShortError, Overloaded


class QueueEstimate:
    """Seconds per (real) token, measured; the wait for queued work it implies."""

    def __init__(self, smoothing: float = 0.2, seconds_per_token: float | None = None) -> None:
        """`seconds_per_token`: a first estimate (the engine's warm-up) until batches are run."""
        self._smoothing = smoothing
        self.seconds_per_token = seconds_per_token
        self._running_until: float | None = None

    def batch_started(self, tokens: int, now: float) -> None:
        if self.seconds_per_token is not None:
            self._running_until = now + tokens * self.seconds_per_token

    def batch_finished(self, tokens: int, elapsed: float) -> None:
        self._running_until = None
        if tokens <= 0 or elapsed <= 0:
            return
        measured = elapsed / tokens
        if self.seconds_per_token is None:
            self.seconds_per_token = measured
        else:
            weight = self._smoothing
            self.seconds_per_token = (1 - weight) * self.seconds_per_token + weight * measured

    def work_s(self, tokens: int) -> float:
        """The model time `tokens` real tokens take: 0 until something has been measured."""
        return 0.0 if self.seconds_per_token is None else tokens * self.seconds_per_token

    def wait_s(self, queued_tokens: int, now: float) -> float:
        """The wait before work submitted now would start: 0 until something has been measured."""
        if self.seconds_per_token is None:
            return 0.0
        in_flight = max(0.0, self._running_until - now) if self._running_until else 0.0
        return in_flight + self.work_s(queued_tokens)


def start_time(
    estimate: QueueEstimate, tokens: int, deadline: float | None, now: float, default_wait_s: float
) -> float:
    """
    When work of `tokens` tokens must start: `default_wait_s` from now without a caller's
    deadline; with one (when the caller needs the results), early enough that the work itself
    ends by it. Raises BudgetTooShortError when the work alone outlasts the caller's budget.
    """
    if deadline is None:
        return now + default_wait_s
    work = estimate.work_s(tokens)
    if work > deadline - now:
        raise BudgetTooShortError(work, max(deadline - now, 0.0))
    return deadline - work


def admit(
    estimate: QueueEstimate,
    queued: int,
    queued_tokens: int,
    count: int,
    max_queue_size: int,
    now: float,
    deadline: float,
) -> None:
    """
    Raise Overloaded when `count` more texts would overfill the queue (a memory bound) or would
    not start by `deadline`; its retry time is when the queue will have drained enough.
    """
    wait = estimate.wait_s(queued_tokens, now)
    overflow = queued + count - max_queue_size
    if overflow > 0:
        # The share of the queued work that must run before these texts fit.
        raise Overloaded(
            f"the queue is full ({queued} texts waiting)", wait * overflow / max(queued, 1)
        )
    late = now + wait - deadline
    if late > 0:
        raise Overloaded(
            f"the expected wait ({wait:.2f}s) is longer than this request's budget "
            f"({max(deadline - now, 0):.2f}s)",
            late,
        )
