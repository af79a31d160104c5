"""Connection limits and timeouts that uvicorn lacks: slow or idle clients cannot hold the server.

uvicorn (0.54) closes a kept-alive connection after `timeout_keep_alive`, but waits forever for a
new connection's first request, for a request's headers and for its body, and accepts connections
until the process runs out of file descriptors (then every accept fails, and logs a traceback).
This subclass of its httptools protocol adds, per connection:
- a limit on open connections: one over it gets an immediate JSON 429 and is closed, so the
  process keeps file descriptors for the clients it serves;
- a header timeout, from the connection's start or a request's first byte to its last header line
  (a connection that sends nothing in that time is closed);
- a body timeout, from the headers to the body's last byte;
- a cap on a request's header bytes (httptools has none: a client could stream headers into memory
  until the header timeout): past it, a JSON 431 and close;
- when the client leaves, every request of the connection learns it, pipelined ones too: uvicorn
  marks only its newest request disconnected, so a running one would go on, then write its answer
  to the closed transport (uvloop raises there; asyncio drops it). Each request's scope carries a
  DisconnectSignal (disconnect.py) that is fired then, so the app needs no task per request
  waiting on `receive` to hear it.
A connection that times out gets a JSON 408 (if nothing was answered yet) and is closed. What a
connection writes in one turn of the event loop leaves in one write (coalescing.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from bert_api.coalescing import CoalescingTransport
from bert_api.disconnect import DISCONNECT_SIGNAL, DisconnectSignal, disconnect_signal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int = 65536


def _raw_response(status: str, error_type: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": {"type": error_type, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


# Overload, like a full queue: 429 with Retry-After (the project's one answer to "too much work").
TOO_MANY = _raw_response(
    "429 Too Many Requests",
    "overloaded",
    "too many open connections: retry shortly",
    "retry-after: 1\r\n",
)
TIMED_OUT = _raw_response(
    "408 Request Timeout", "request_timeout", "the request was not received in time"
)


def _headers_too_large(limit: int) -> bytes:
    return _raw_response(
        "431 Request Header Fields Too Large",
        "headers_too_large",
        f"the request's headers are over {limit} bytes",
    )


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with `limits` (pass it to uvicorn.Config as `http`)."""
    too_large = _headers_too_large(limits.max_header_bytes)

    class GuardedProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _refused = False
        # Between a request's first byte and its last: a time-out then is answered 408.
        _in_request = False
        # Between a request's first byte and its last header: bytes received meanwhile.
        _in_headers = False
        _header_bytes = 0
        _headers_ended_in_chunk = False
        # This connection's requests not yet answered (the running one and pipelined ones).
        _open_cycles: list[RequestResponseCycle]

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= limits.max_connections:
                self._refused = True
                transport.write(TOO_MANY)
                transport.close()
                return
            self._open_cycles = []
            super().connection_made(CoalescingTransport(transport, self.loop))
            self._arm(limits.header_timeout_s)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._disarm()
            super().connection_lost(exc)
            for cycle in self._open_cycles:  # uvicorn told only the newest one
                if not cycle.response_complete:
                    cycle.disconnected = True
                    signal = disconnect_signal(cycle.scope)
                    if signal is not None:
                        signal.fire()
                cycle.message_event.set()
            self._open_cycles.clear()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._headers_ended_in_chunk = False
            super().data_received(data)
            if not self._in_headers or self.transport.is_closing():
                return
            # Counted after parsing, so a chunk that also ended headers is not counted whole.
            if not self._headers_ended_in_chunk:
                self._header_bytes += len(data)
            if self._header_bytes > limits.max_header_bytes:
                if self.cycle is None or self.cycle.response_complete:
                    self.transport.write(too_large)  # else a pipelined request: just close
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            extensions: dict[str, Any] = {DISCONNECT_SIGNAL: DisconnectSignal()}
            self.scope["extensions"] = extensions
            self._in_request = self._in_headers = True
            self._header_bytes = 0
            if self._timer is None:  # a kept-alive connection's next request
                self._arm(limits.header_timeout_s)

        def on_headers_complete(self) -> None:
            self._disarm()
            self._in_headers = False
            self._headers_ended_in_chunk = True
            super().on_headers_complete()
            if self.cycle is not None:
                cycles = self._open_cycles
                cycles[:] = [cycle for cycle in cycles if not cycle.response_complete]
                cycles.append(self.cycle)
                if self.cycle.more_body:
                    self._arm(limits.body_timeout_s)

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_request = False
            super().on_message_complete()

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._timed_out)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _timed_out(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            # An idle connection (no request begun) is closed as quietly as a kept-alive one.
            if self._in_request and (self.cycle is None or not self.cycle.response_started):
                self.transport.write(TIMED_OUT)
            self.transport.close()

    return GuardedProtocol


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit toward `wanted` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class QuietAcceptErrors:
    """
    A loop exception handler that reports failed accepts (out of file descriptors, memory)
    as one log line per interval with a count, instead of a traceback per attempt.
    """

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._count = 0
        # None until the first report: the first failure is always reported (time.monotonic()
        # starts near 0 at boot, so "0.0" would hide it on a machine up for less than the interval).
        self._since: float | None = None
        self._last: str = ""

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        message = str(context.get("message", ""))
        if not (isinstance(error, OSError) and "accept" in message):
            loop.default_exception_handler(context)
            return
        self._count += 1
        self._last = f"{message}: {error}"
        now = time.monotonic()
        if self._since is None or now - self._since >= self._interval_s:
            logger.error(
                "accepting connections fails (%d times in %.0fs, last: %s): lower "
                "MAX_CONNECTIONS or raise the open-file limit",
                self._count,
                0.0 if self._since is None else now - self._since,
                self._last,
            )
            self._count, self._since = 0, now
