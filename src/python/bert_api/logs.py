"""The service's logging: LOG_LEVEL, and LOG_FORMAT text or json (one JSON object per line)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from bert_api.settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class RepeatedClientWarnings(logging.Filter):
    """
    uvicorn warns once per malformed or upgrade request, so a client could write the log at its
    own request rate: each such warning is logged at most once per interval, with how many like
    it were held back since the last one.
    """

    MESSAGES = (
        "Invalid HTTP request received.",
        "Unsupported upgrade request.",
        "No supported WebSocket library detected.",
    )

    def __init__(
        self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}  # message -> (last logged, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = next((known for known in self.MESSAGES if message.startswith(known)), None)
        if kind is None:
            return True
        now = self._clock()
        logged_at, held = self._last.get(kind, (float("-inf"), 0))
        if now - logged_at < self._interval_s:
            self._last[kind] = (logged_at, held + 1)
            return False
        self._last[kind] = (now, 0)
        if held:
            record.msg = f"{message} ({held} more like it in the last {now - logged_at:.0f}s)"
            record.args = ()
        return True


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    uvicorn_warnings = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, RepeatedClientWarnings) for f in uvicorn_warnings.filters):
        uvicorn_warnings.addFilter(RepeatedClientWarnings())
