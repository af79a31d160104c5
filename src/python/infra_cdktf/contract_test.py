"""
The app and the service agree: every setting the ConfigMap and Deployment pass is one bert_api
reads, and the probe and metrics paths are routes it serves. (Test-only dependency: the infra
wheel does not depend on bert_api.)
"""

from __future__ import annotations

import msgspec
from litestar import Litestar

from bert_api.app import create_app
from bert_api.settings import FILE_VARIABLES, Settings
from infra_cdktf import contract, inference_manifests
from infra_cdktf.synth_testing import settings_for_tests

# Read by huggingface_hub inside the service, not by bert_api's settings.
LIBRARY_VARIABLES = {"HF_HOME"}


def _service_variables() -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(Settings)} | set(FILE_VARIABLES)


def test_every_configured_variable_is_a_bert_api_setting() -> None:
    settings = settings_for_tests(require_api_key=True)
    config = inference_manifests.config_map(settings)["data"]
    pod = inference_manifests.deployment(settings)["spec"]["template"]["spec"]
    env = {e["name"] for container in pod["containers"] for e in container.get("env", [])}
    unknown = (set(config) | env) - _service_variables() - LIBRARY_VARIABLES
    assert unknown == set()


def test_configured_values_pass_bert_apis_own_validation() -> None:
    config = inference_manifests.config_map(settings_for_tests())["data"]
    values = {k: v for k, v in config.items() if k not in LIBRARY_VARIABLES}
    settings = msgspec.convert(values, Settings, strict=False)
    assert settings.port == contract.HTTP_PORT
    assert settings.onnx_execution_provider == "CUDA"


def test_probe_and_metrics_paths_are_routes_of_the_service() -> None:
    assert {contract.LIVE_PATH, contract.READY_PATH, contract.METRICS_PATH} <= _routes()


def _routes() -> set[str]:
    app: Litestar = create_app(Settings())
    return {route.path for route in app.routes}


def test_every_route_is_either_public_or_private_at_the_edge() -> None:
    def under(path: str, prefixes: tuple[str, ...]) -> bool:
        return any(path == p.rstrip("/") or path.startswith(p) for p in prefixes)

    for path in _routes():
        public = under(path, contract.PUBLIC_PATH_PREFIXES)
        private = under(path, contract.PRIVATE_PATH_PREFIXES)
        assert public != private, f"{path}: decide whether the edge serves it"
    assert not under(contract.METRICS_PATH, contract.PUBLIC_PATH_PREFIXES)
    assert any(path.startswith("/docs") for path in _routes()), "the OpenAPI pages are at /docs"


def test_a_separate_metrics_port_is_a_setting_bert_api_reads() -> None:
    """A separate metrics port must be one bert_api reads (else /metrics stays on HTTP_PORT)."""
    if contract.METRICS_PORT != contract.HTTP_PORT:
        assert contract.METRICS_PORT_SETTING in _service_variables()
    else:
        config = inference_manifests.config_map(settings_for_tests())["data"]
        assert contract.METRICS_PORT_SETTING not in config
