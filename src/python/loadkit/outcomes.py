"""What happened to one request, and the error category it counts under."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One request: its latency and either an HTTP status or the exception that ended it."""

    latency_ms: float
    status: int | None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def category(self) -> str | None:
        """
        None for success; else `http_<status>`, `timeout`, `connection` or `other:<ExceptionType>`.
        """
        if self.ok:
            return None
        if self.error is not None:
            return categorize_exception(self.error)
        return f"http_{self.status}" if self.status else "connection"


def categorize_exception(error: BaseException) -> str:
    """
    timeout, connection or other:<type>, looking through wrappers such as a client's retry error.
    """
    chain = list(_causes(error))
    if any(
        isinstance(e, TimeoutError | socket.timeout) or "timeout" in type(e).__name__.lower()
        for e in chain
    ):
        return "timeout"
    if any(
        isinstance(e, ConnectionError | OSError) or "connection" in type(e).__name__.lower()
        for e in chain
    ):
        return "connection"
    return f"other:{type(error).__name__}"


def _causes(error: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """
    The error and what it wraps: __cause__, __context__, an `original` attribute, exception args.
    """
    yield error
    if depth >= 5:
        return
    wrapped = [error.__cause__, error.__context__, getattr(error, "original", None)]
    wrapped += [arg for arg in error.args if isinstance(arg, BaseException)]
    for inner in wrapped:
        if isinstance(inner, BaseException) and inner is not error:
            yield from _causes(inner, depth + 1)
