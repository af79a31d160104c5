"""Health, readiness and model metadata (seed routes, KServe V1 and Open Inference Protocol V2)."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from bert_api.errors import ApiError, error_responses
from bert_api.health_schemas import (
    HealthBody,
    LiveBody,
    ModelInfo,
    ModelReadyBody,
    ReadyBody,
    TensorSpec,
    V1ModelBody,
    V2ModelBody,
    model_info,
)
from bert_api.hosting import Host, Status

PLATFORM = "onnxruntime_onnx"
# Prometheus' text format; Litestar appends "; charset=utf-8" to text types itself, so the constant
# prometheus_client offers (which has it already) would name the charset twice.
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4"


def _not_ready(body: type) -> dict[int, ResponseSpec]:
    return {
        503: ResponseSpec(data_container=body, description="Not ready", generate_examples=False)
    }


def _check_name(host: Host, name: str) -> None:
    served_model = host.settings.served_model_name
    if name != served_model:
        raise ApiError(404, f"unknown model {name!r} (this server serves {served_model!r})")


def _answer(ready: bool, body: object) -> Response[object]:
    return Response(body, status_code=200 if ready else 503)


@get(
    "/health",
    tags=["health"],
    responses=_not_ready(HealthBody),
    summary="Ready to serve (200) or not yet / no longer (503)",
)
async def health(host: Host) -> Response[HealthBody]:
    body = HealthBody(host.status.value, host.settings.served_model_name, host.error)
    return _answer(host.status is Status.READY, body)  # type: ignore[return-value]


@get(
    "/v2/health/live",
    tags=["health"],
    responses=_not_ready(LiveBody),
    summary="The process is up (200 also while loading); 503 once the model has failed",
)
async def live(host: Host) -> Response[LiveBody]:
    if host.status is Status.FAILED:
        return _answer(False, LiveBody(False, host.error or "failed"))  # type: ignore[return-value]
    return _answer(True, LiveBody(True))  # type: ignore[return-value]


@get(
    "/v2/health/ready",
    tags=["health"],
    responses=_not_ready(ReadyBody),
    summary="The model is loaded and warmed",
)
async def ready(host: Host) -> Response[ReadyBody]:
    is_ready = host.status is Status.READY
    return _answer(is_ready, ReadyBody(is_ready))  # type: ignore[return-value]


def _info(host: Host) -> ModelInfo:
    service = host.service() if host.status is Status.READY else None
    return model_info(host.status.value, service.describe() if service else None)


@get(
    "/v1/models/{model_name:str}",
    tags=["models"],
    responses=error_responses(404),
    summary="KServe V1 model status and metadata",
)
async def v1_model(host: Host, model_name: str) -> V1ModelBody:
    _check_name(host, model_name)
    return V1ModelBody(model_name, host.status is Status.READY, _info(host))


@get(
    "/v2/models/{model_name:str}",
    tags=["models"],
    responses=error_responses(404),
    summary="Open Inference Protocol model metadata",
)
async def v2_model(host: Host, model_name: str) -> V2ModelBody:
    _check_name(host, model_name)
    info = _info(host)
    width = info.embedding_size if isinstance(info.embedding_size, int) else -1
    return V2ModelBody(
        name=model_name,
        versions=["1"],
        platform=PLATFORM,
        inputs=[TensorSpec("text", "BYTES", [-1])],
        outputs=[TensorSpec("embedding", "FP32", [-1, width])],
        parameters=info,
    )


@get(
    "/v2/models/{model_name:str}/ready",
    tags=["models"],
    responses={**error_responses(404), **_not_ready(ModelReadyBody)},
    summary="Open Inference Protocol readiness",
)
async def v2_model_ready(host: Host, model_name: str) -> Response[ModelReadyBody]:
    _check_name(host, model_name)
    is_ready = host.status is Status.READY
    return _answer(is_ready, ModelReadyBody(model_name, is_ready))  # type: ignore[return-value]


@get(
    "/metrics",
    tags=["metrics"],
    summary="Prometheus metrics (404 here when METRICS_PORT serves them apart)",
    media_type=METRICS_MEDIA_TYPE,
    responses=error_responses(404),
)
async def metrics(host: Host) -> Response[bytes]:
    if host.settings.separate_metrics_port:
        raise ApiError(404, "metrics are served on their own port (METRICS_PORT)")
    return Response(host.metrics.exposition(), media_type=METRICS_MEDIA_TYPE)


HEALTH_ROUTES = [health, live, ready, v1_model, v2_model, v2_model_ready, metrics]
