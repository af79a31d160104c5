"""The Litestar application factory: the routes, the model host behind them, and the middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp

from bert_api import __version__
from bert_api.disconnect import CancelOnDisconnect
from bert_api.docs_pages import openapi_config
from bert_api.errors import handle_error
from bert_api.fast_lane import FastLane, lane_routes
from bert_api.guards import header_check, inference_guard
from bert_api.hosting import Host
from bert_api.limits import RequestLimits
from bert_api.metrics import ServiceMetrics
from bert_api.model_host import ModelHost
from bert_api.request_metrics import RequestMetrics
from bert_api.routes_common import dependencies
from bert_api.routes_health import HEALTH_ROUTES
from bert_api.routes_kserve import KSERVE_ROUTES
from bert_api.routes_openai import OPENAI_ROUTES
from bert_api.routes_tasks import TASK_ROUTES
from bert_api.routes_v2 import V2_ROUTES
from bert_api.settings import Settings
from bert_runtime.errors import BertRuntimeError

ROUTES = [*KSERVE_ROUTES, *HEALTH_ROUTES, *TASK_ROUTES, *OPENAI_ROUTES, *V2_ROUTES]


def create_asgi(
    settings: Settings, on_load_failure: Callable[[BaseException], None] | None = None
) -> tuple[ASGIApp, Host]:
    """What a one-process server runs (`serving_asgi`), and the model's host, which it drains."""
    metrics = ServiceMetrics(settings.served_model_name)
    host = ModelHost(settings, metrics, on_load_failure, freeze_heap=True)
    return serving_asgi(settings, host), host


def serving_asgi(settings: Settings, host: Host) -> ASGIApp:
    """
    The app as served, outside in: the request metrics (which so see every answer, the router's
    own 404 and 405 included: Litestar's middleware runs only for routed requests), the
    disconnect watcher, the fast lane (fast_lane.py) and the Litestar app behind it.
    """
    limits = RequestLimits(settings.max_items_per_request, settings.max_chars_per_item)
    app = create_app(settings, host=host)
    lane = FastLane(app, lane_routes(ROUTES), host, limits, header_check(settings.api_key))
    return RequestMetrics(CancelOnDisconnect(lane), host.metrics)


def create_app(
    settings: Settings,
    on_load_failure: Callable[[BaseException], None] | None = None,
    host: Host | None = None,
) -> Litestar:
    """An app serving `settings.model_name`; the model loads in the background after start-up."""
    host = host or ModelHost(settings, ServiceMetrics(settings.served_model_name), on_load_failure)
    limits = RequestLimits(settings.max_items_per_request, settings.max_chars_per_item)

    @asynccontextmanager
    async def model_lifespan(app: Litestar) -> AsyncIterator[None]:
        host.start()
        try:
            yield
        finally:
            await host.close()

    return Litestar(
        route_handlers=ROUTES,
        # It acts on inference routes only (guards.INFERENCE).
        guards=[inference_guard(settings.api_key)],
        dependencies=dependencies(host, limits),
        lifespan=[model_lifespan],
        # One handler (errors.error_answer) for every type, so Litestar's choice by type changes
        # nothing; these are the types it maps.
        exception_handlers={
            error: handle_error
            for error in (
                HTTPException,
                BertRuntimeError,
                UnicodeDecodeError,
                msgspec.ValidationError,
                msgspec.DecodeError,
                RecursionError,
                Exception,
            )
        },
        request_max_body_size=settings.max_body_bytes,
        # serve.configure_logging owns logging (LOG_LEVEL, LOG_FORMAT); Litestar would replace it.
        logging_config=None,
        openapi_config=openapi_config(
            "bert-serve",
            __version__,
            "BERT-family inference: embeddings, fill-mask, classification, reranking.",
        ),
    )
