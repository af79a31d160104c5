"""The HTTP checks both suites use: health, metadata, inference."""

from __future__ import annotations

import math
import time
from typing import Any

import requests

from loadkit.checks import CheckResult
from loadkit.workload import request_for


class Client:
    """A small JSON client with one timeout and error handling that becomes check reasons."""

    def __init__(self, endpoint: str, timeout_s: float = 30.0, api_key: str | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.endpoint}{path}", timeout=self.timeout_s)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.endpoint}{path}", json=body, timeout=self.timeout_s)


def check_health(client: Client) -> CheckResult:
    try:
        response = client.get("/health")
    except requests.RequestException as error:
        return CheckResult("health", False, [f"no answer: {error}"])
    body = _json(response)
    ok = response.status_code == 200 and body.get("status") == "ready"
    reasons = (
        [] if ok else [f"/health answered {response.status_code} {body or response.text[:200]}"]
    )
    return CheckResult("health", ok, reasons, {"status": body.get("status")})


def fetch_metadata(client: Client, model: str) -> tuple[CheckResult, dict[str, Any]]:
    try:
        response = client.get(f"/v1/models/{model}")
    except requests.RequestException as error:
        return CheckResult("model metadata", False, [f"no answer: {error}"]), {}
    body = _json(response)
    info = body.get("model", {}) if isinstance(body.get("model"), dict) else {}
    reasons = []
    if response.status_code != 200:
        reasons.append(f"/v1/models/{model} answered {response.status_code}")
    elif body.get("ready") is not True:
        reasons.append(f"model {model} is not ready")
    details = {
        k: info.get(k)
        for k in ("execution_provider", "device", "device_name", "precision", "tasks")
    }
    return CheckResult("model metadata", not reasons, reasons, details), info


def check_gpu(info: dict[str, Any], expect_gpu: bool) -> CheckResult:
    on_gpu = (
        info.get("device") == "cuda" and info.get("execution_provider") == "CUDAExecutionProvider"
    )
    details = {
        "on_gpu": on_gpu,
        "device_name": info.get("device_name"),
        "gpu_memory_total_bytes": info.get("gpu_memory_total_bytes"),
    }
    reasons = []
    if expect_gpu and not on_gpu:
        reasons.append(
            f"expected a GPU, the model runs on {info.get('execution_provider', 'unknown')}"
        )
    return CheckResult("gpu detection", not reasons, reasons, details)


def check_inference(client: Client, model: str, texts: list[str], name: str) -> CheckResult:
    path, body = request_for("v1", texts, model)
    started = time.perf_counter()
    try:
        response = client.post(path, body)
    except requests.RequestException as error:
        return CheckResult(name, False, [f"no answer: {error}"])
    latency_ms = (time.perf_counter() - started) * 1000
    predictions = _json(response).get("predictions")
    reasons = []
    if response.status_code != 200:
        reasons.append(f"{path} answered {response.status_code}: {response.text[:200]}")
    elif not isinstance(predictions, list) or len(predictions) != len(texts):
        reasons.append(f"expected {len(texts)} predictions, got {predictions!r:.200}")
    elif not all(_finite_vector(p) for p in predictions):
        reasons.append("a prediction is not a non-empty vector of finite numbers")
    details = {"latency_ms": round(latency_ms, 2), "count": len(texts)}
    if isinstance(predictions, list) and predictions and isinstance(predictions[0], list):
        details["dimensions"] = len(predictions[0])
    return CheckResult(name, not reasons, reasons, details)


def _finite_vector(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(x, int | float) and math.isfinite(x) for x in value)
    )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
