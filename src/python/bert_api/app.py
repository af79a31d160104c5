"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from bert_api import __version__
from bert_api.disconnect import CancelOnDisconnect
from bert_api.docs_pages import openapi_config
from bert_api.errors import (
    handle_bad_encoding,
    handle_http_exception,
    handle_runtime_error,
    handle_unexpected,
)
from bert_api.metrics import ServiceMetrics
from bert_api.model_service import ModelService
from bert_api.request_metrics import request_metrics
from bert_api.routes_health import HEALTH_ROUTES
from bert_api.routes_inference import INFERENCE_ROUTES
from bert_api.settings import Settings
from bert_runtime.errors import BertRuntimeError


def create_app(
    settings: Settings, on_load_failure: Callable[[BaseException], None] | None = None
) -> Litestar:
    """An app serving `settings.model_name`; the model loads in the background after start-up."""
    metrics = ServiceMetrics(settings.served_model_name)
    service = ModelService(settings, metrics, on_load_failure)

    @asynccontextmanager
    async def model_lifespan(app: Litestar) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await service.close()

    return Litestar(
        route_handlers=[*HEALTH_ROUTES, *INFERENCE_ROUTES],
        lifespan=[model_lifespan],
        # Outermost first: the metrics see the 499 of a request whose client left.
        middleware=[request_metrics(metrics), CancelOnDisconnect],
        exception_handlers={
            HTTPException: handle_http_exception,
            BertRuntimeError: handle_runtime_error,
            UnicodeDecodeError: handle_bad_encoding,
            Exception: handle_unexpected,
        },
        request_max_body_size=settings.max_body_bytes,
        # serve.configure_logging owns logging (LOG_LEVEL, LOG_FORMAT); Litestar would replace it.
        logging_config=None,
        state=State({"settings": settings, "service": service}),
        openapi_config=openapi_config(
            "bert-serve",
            __version__,
            "BERT-family inference: embeddings, fill-mask, classification.",
        ),
    )
