"""ASGI middleware recording the seed's request metrics for every request but probes and scrapes.

At the ASGI level it sees the final status of every response, including those produced by exception
handlers and the router's own 404 and 405, so outcomes are counted once and in one place. Health
probes, metric scrapes and the docs pages are left out: they would drown the traffic in
inference_requests_total.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter

from bert_api.errors import ERROR_TYPE_BY_STATUS
from bert_api.metrics import ServiceMetrics

_NOT_INFERENCE = ("/health", "/v2/health", "/metrics", "/schema", "/docs")


def is_counted(scope: Scope) -> bool:
    """An HTTP request that is not a health probe, a metrics scrape or a docs page."""
    return scope["type"] == ScopeType.HTTP and not scope.get("path", "").startswith(_NOT_INFERENCE)


def is_inference_request(scope: Scope) -> bool:
    """A POST that is not to health, metrics or the docs: one that may run the model."""
    return is_counted(scope) and scope.get("method") == "POST"


class RequestMetrics:
    """ASGI middleware around the whole app: counts, times and classifies every counted answer."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled counter per status, found once: prometheus_client's `labels` takes a lock
        # and builds a key on every call.
        self._counters: dict[int, Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_counted(scope):
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        metrics.active_requests.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            metrics.active_requests.dec()
            metrics.request_duration.observe(time.perf_counter() - started)
            counter = self._counters.get(status)
            if counter is None:
                counter = self._counters[status] = metrics.requests.labels(status=str(status))
            counter.inc()
            if status >= 400:
                fallback = "internal_error" if status >= 500 else "bad_request"
                metrics.errors.labels(type=ERROR_TYPE_BY_STATUS.get(status, fallback)).inc()
