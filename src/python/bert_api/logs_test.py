"""The service's log filters."""

from __future__ import annotations

import logging

from bert_api.logs import RepeatedClientWarnings


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, message, (), None)


def test_a_client_warning_is_logged_once_per_interval_with_the_count_held_back() -> None:
    clock = _Clock()
    warnings = RepeatedClientWarnings(interval_s=10, clock=clock)
    invalid = "Invalid HTTP request received."
    assert warnings.filter(_record(invalid))
    assert [warnings.filter(_record(invalid)) for _ in range(500)] == [False] * 500
    # Another kind of warning has its own interval.
    assert warnings.filter(_record("Unsupported upgrade request."))
    clock.now = 12.0
    later = _record(invalid)
    assert warnings.filter(later)
    assert later.getMessage() == f"{invalid} (500 more like it in the last 12s)"


def test_other_messages_pass_untouched() -> None:
    warnings = RepeatedClientWarnings(interval_s=10, clock=_Clock())
    for _ in range(3):
        record = _record("Exception in ASGI application")
        assert warnings.filter(record)
        assert record.getMessage() == "Exception in ASGI application"
