"""How long queued work will take, from how long the model has been taking.

The batcher admits work by time (would it start before its deadline?), so it needs the wait ahead
of a new text: the rest of the batch running now plus the queued tokens at the measured seconds
per token. Seconds per token is an exponentially weighted mean over executed batches, so it
follows a model's real speed on this machine, batching overhead and padding included. Until the
first batch has run there is no estimate, and nothing is refused for time.
"""

from __future__ import annotations


class QueueEstimate:
    """Seconds per (real) token, measured; the wait for queued work it implies."""

    def __init__(self, smoothing: float = 0.2) -> None:
        self._smoothing = smoothing
        self.seconds_per_token: float | None = None
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

    def wait_s(self, queued_tokens: int, now: float) -> float:
        """The wait before work submitted now would start: 0 until something has been measured."""
        if self.seconds_per_token is None:
            return 0.0
        in_flight = max(0.0, self._running_until - now) if self._running_until else 0.0
        return in_flight + queued_tokens * self.seconds_per_token
