from __future__ import annotations

import socket

from loadkit.outcomes import Outcome, categorize_exception


class RetriesExceeded(Exception):
    """Shaped like geventhttpclient's: the real error is kept as `original`."""

    def __init__(self, url: str, retries: int, original: BaseException | None = None) -> None:
        super().__init__(url, retries)
        self.original = original


def test_statuses_and_exceptions_get_their_categories() -> None:
    assert Outcome(1.0, 200).category is None
    assert Outcome(1.0, 429).category == "http_429"
    assert Outcome(1.0, 503).category == "http_503"
    assert Outcome(1.0, None, ConnectionRefusedError()).category == "connection"
    assert Outcome(1.0, None, socket.timeout()).category == "timeout"
    assert Outcome(1.0, None, ValueError("odd")).category == "other:ValueError"


def test_wrapped_timeouts_count_as_timeouts() -> None:
    assert categorize_exception(RetriesExceeded("/x", 1, original=TimeoutError())) == "timeout"
    try:
        try:
            raise TimeoutError("read")
        except TimeoutError as inner:
            raise RuntimeError("gave up") from inner
    except RuntimeError as outer:
        assert categorize_exception(outer) == "timeout"
