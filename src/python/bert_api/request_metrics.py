"""ASGI middleware recording the seed's request metrics for every inference route.

At the ASGI level it sees the final status of every response, including those produced by exception
handlers, so outcomes are counted once and in one place.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from bert_api.errors import ERROR_TYPE_BY_STATUS
from bert_api.metrics import ServiceMetrics

_NOT_INFERENCE = ("/health", "/v2/health", "/metrics", "/schema", "/docs")


def is_inference_request(scope: Scope) -> bool:
    """A POST to an inference route (not health, metrics or the docs)."""
    path: str = scope.get("path", "")
    return (
        scope["type"] == ScopeType.HTTP
        and scope.get("method") == "POST"
        and not path.startswith(_NOT_INFERENCE)
    )


def request_metrics(metrics: ServiceMetrics) -> type:
    """
    A middleware class bound to `metrics` (Litestar instantiates middleware with the next app).
    """

    class RequestMetrics:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if not is_inference_request(scope):
                await self.app(scope, receive, send)
                return
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
                metrics.requests.labels(status=str(status)).inc()
                if status >= 400:
                    fallback = "internal_error" if status >= 500 else "bad_request"
                    metrics.errors.labels(type=ERROR_TYPE_BY_STATUS.get(status, fallback)).inc()

    return RequestMetrics
