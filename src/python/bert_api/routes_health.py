"""Health, readiness and model metadata (seed routes, KServe V1 and Open Inference Protocol V2)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import generate_latest

from bert_api.errors import ApiError, error_responses
from bert_api.model_service import ModelService, Status

PLATFORM = "onnxruntime_onnx"
# Prometheus' text format; Litestar appends "; charset=utf-8" to text types itself, so the constant
# prometheus_client offers (which has it already) would name the charset twice.
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4"
NOT_READY = {
    503: ResponseSpec(
        data_container=dict[str, Any], description="Not ready", generate_examples=False
    )
}


def _service(state: State) -> ModelService:
    service: ModelService = state.service
    return service


def _check_name(state: State, name: str) -> None:
    if name != state.settings.served_model_name:
        raise ApiError(
            404, f"unknown model {name!r} (this server serves {state.settings.served_model_name!r})"
        )


def _ready_response(ready: bool, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(body, status_code=200 if ready else 503)


@get(
    "/health",
    tags=["health"],
    responses=NOT_READY,
    summary="Ready to serve (200) or not yet / no longer (503)",
)
async def health(state: State) -> Response[dict[str, Any]]:
    service = _service(state)
    body: dict[str, Any] = {
        "status": service.status.value,
        "model": state.settings.served_model_name,
    }
    if service.error:
        body["error"] = service.error
    return _ready_response(service.status is Status.READY, body)


@get(
    "/v2/health/live",
    tags=["health"],
    responses=NOT_READY,
    summary="The process is up (200 also while loading); 503 once the model has failed",
)
async def live(state: State) -> Response[dict[str, Any]]:
    service = _service(state)
    if service.status is Status.FAILED:
        return _ready_response(False, {"live": False, "error": service.error or "failed"})
    return _ready_response(True, {"live": True})


@get(
    "/v2/health/ready",
    tags=["health"],
    responses=NOT_READY,
    summary="The model is loaded and warmed",
)
async def ready(state: State) -> Response[dict[str, Any]]:
    is_ready = _service(state).status is Status.READY
    return _ready_response(is_ready, {"ready": is_ready})


def model_info(state: State) -> dict[str, Any]:
    """What clients and operators want to know about the model and where it runs."""
    service = _service(state)
    info: dict[str, Any] = {"status": service.status.value}
    engine = service.engine
    if engine is None:
        return info
    manifest = engine.manifest
    device = engine.device_info
    tasks = ["embed"]
    tasks += ["fill-mask"] if engine.supports_fill_mask else []
    tasks += ["classify"] if engine.supports_classification else []
    tasks += ["rerank"] if engine.supports_rerank else []
    info.update(
        {
            "source": manifest.source,
            "revision": manifest.revision,
            "architecture": manifest.architecture,
            "precision": manifest.precision.value,
            "tasks": tasks,
            # What fill-mask texts must contain ("[MASK]", RoBERTa's "<mask>").
            "mask_token": engine.tokenizer.mask_token if engine.supports_fill_mask else None,
            "labels": list(manifest.id2label.values()),
            "pooling": manifest.pooling.value,
            "normalize": manifest.normalize,
            "prompts": manifest.prompts,
            "default_prompt_name": manifest.default_prompt_name,
            "hidden_size": manifest.hidden_size,
            "embedding_size": manifest.embedding_size,
            "max_sequence_length": engine.max_length,
            "truncation": engine.tokenizer.truncation.value,
            "execution_provider": device.provider,
            "device": device.device.value,
            "device_name": device.name,
            "gpu_memory_total_bytes": device.memory_total_bytes,
            "gpu_memory_used_bytes": device.memory_used_bytes,
            "max_batch_size": state.settings.batch_size,
        }
    )
    return info


@get(
    "/v1/models/{model_name:str}",
    tags=["models"],
    responses=error_responses(404),
    summary="KServe V1 model status and metadata",
)
async def v1_model(state: State, model_name: str) -> dict[str, Any]:
    _check_name(state, model_name)
    service = _service(state)
    return {
        "name": model_name,
        "ready": service.status is Status.READY,
        "model": model_info(state),
    }


@get(
    "/v2/models/{model_name:str}",
    tags=["models"],
    responses=error_responses(404),
    summary="Open Inference Protocol model metadata",
)
async def v2_model(state: State, model_name: str) -> dict[str, Any]:
    _check_name(state, model_name)
    info = model_info(state)
    width = info.get("embedding_size", -1)
    return {
        "name": model_name,
        "versions": ["1"],
        "platform": PLATFORM,
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "embedding", "datatype": "FP32", "shape": [-1, width]}],
        "parameters": info,
    }


@get(
    "/v2/models/{model_name:str}/ready",
    tags=["models"],
    responses={**error_responses(404), **NOT_READY},
    summary="Open Inference Protocol readiness",
)
async def v2_model_ready(state: State, model_name: str) -> Response[dict[str, Any]]:
    _check_name(state, model_name)
    is_ready = _service(state).status is Status.READY
    return _ready_response(is_ready, {"name": model_name, "ready": is_ready})


@get("/metrics", tags=["metrics"], summary="Prometheus metrics", media_type=METRICS_MEDIA_TYPE)
async def metrics(request: Request) -> Response[bytes]:  # type: ignore[type-arg]
    service = _service(request.app.state)
    service.metrics.queue_depth.set(service.queue_depth)
    body = generate_latest(service.metrics.registry)
    return Response(body, media_type=METRICS_MEDIA_TYPE)


HEALTH_ROUTES = [health, live, ready, v1_model, v2_model, v2_model_ready, metrics]
