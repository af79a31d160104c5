"""The HTTP server around the app: uvicorn, with connection limits and a shutdown that drains.

On SIGTERM or SIGINT the service drains before uvicorn stops: readiness turns red and new
inference requests get 503 with `Connection: close` (so kept-alive clients reconnect elsewhere,
rather than being reset when the process exits), while queued work keeps running. The drain ends
when no work is left (after at least DRAIN_WINDOW_S, so requests racing the signal on kept-alive
connections are answered) or when the grace period is nearly spent: then texts still queued get
503 with Retry-After, and uvicorn finishes the requests in flight with the time left. A second
signal stops at once. The process exits 0 after a drained shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType

import uvicorn

from bert_api.connections import (
    ConnectionLimits,
    QuietAcceptErrors,
    guarded_protocol,
    raise_open_file_limit,
)
from bert_api.hosting import Host
from bert_api.settings import Settings

logger = logging.getLogger(__name__)

# Kept-alive connections are answered 503 for at least this long after the signal.
DRAIN_WINDOW_S = 1.0
# File descriptors kept for everything but client connections (model files, logs, sockets).
RESERVED_FILES = 256


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining `host` on the first signal (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, host: Host, grace_s: float) -> None:
        super().__init__(config)
        self._host = host
        self._grace_s = grace_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(QuietAcceptErrors())
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal it caught once shut down, so the process would die by
        # SIGTERM (exit -15) even after finishing every request; Kubernetes and CI read that as a
        # crash. These handlers drain instead, and the process exits 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._loop is None:
            self.handle_exit(sig, frame)  # the second signal: stop now
            return
        self._draining = True
        loop = self._loop
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain()))

    async def _drain(self) -> None:
        started = time.monotonic()
        margin = min(2.0, self._grace_s / 4)
        give_up = started + max(self._grace_s - margin, 0.0)
        logger.info(
            "draining: refusing new work, finishing queued work (%.0fs grace)", self._grace_s
        )
        self._host.begin_drain()
        while time.monotonic() < give_up and (
            not self._host.idle or time.monotonic() < started + DRAIN_WINDOW_S
        ):
            await asyncio.sleep(0.05)
        if not self._host.idle:
            logger.warning("shutdown grace nearly spent: answering the texts still queued 503")
            self._host.abort_queued()
        left = max(self._grace_s - (time.monotonic() - started), 0.5)
        self.config.timeout_graceful_shutdown = max(1, int(left))
        self.should_exit = True


def uvicorn_config(app: object, settings: Settings) -> uvicorn.Config:
    """uvicorn for `app`: httptools with the connection limits, uvloop where installed."""
    files = raise_open_file_limit(settings.max_connections + RESERVED_FILES)
    max_connections = min(settings.max_connections, max(files - RESERVED_FILES, 16))
    if max_connections < settings.max_connections:
        logger.warning(
            "the open-file limit (%d) leaves room for %d connections, not MAX_CONNECTIONS=%d",
            files,
            max_connections,
            settings.max_connections,
        )
    limits = ConnectionLimits(
        max_connections=max_connections,
        header_timeout_s=settings.header_timeout_seconds,
        body_timeout_s=settings.body_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
    )
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(limits),
        loop="auto",
        timeout_keep_alive=int(max(1, settings.keep_alive_seconds)),
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        log_config=None,
        access_log=False,
    )
