"""A table of bad requests: each gets the right status and a JSON error, and the server stays up."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bert_api.testing import RunningServer, run_server
from bert_runtime.testutil.models import TINY_BERT_MLM

API_KEY = "test-key-not-a-secret"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON = {"Content-Type": "application/json", **AUTH}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "MODEL_NAME": str(TINY_BERT_MLM),
        "API_KEY": API_KEY,
        "TRUNCATION": "reject",
        "MAX_ITEMS_PER_REQUEST": "4",
        "MAX_CHARS_PER_ITEM": "500",
        "MAX_BODY_BYTES": "8192",
    }
    with run_server(env, tmp_path_factory.mktemp("bad")) as running:
        yield running


LONG_TEXT = "the quick brown fox " * 20  # 81 tokens with [CLS]/[SEP]: over the model's 64

CASES = [
    # (id, method, path, headers, body bytes, status, error type)
    ("malformed json", "POST", "/embed", JSON, b'{"inputs": ', 400, None),
    ("invalid utf-8", "POST", "/embed", JSON, b'{"inputs": "\xff\xfe"}', 400, "invalid_json"),
    ("wrong type", "POST", "/embed", JSON, b'{"inputs": 5}', 422, "invalid_input"),
    ("list of numbers", "POST", "/embed", JSON, b'{"inputs": [1, 2]}', 422, "invalid_input"),
    ("missing field", "POST", "/embed", JSON, b"{}", 422, "invalid_input"),
    (
        "bad pooling",
        "POST",
        "/embed",
        JSON,
        b'{"inputs": "a", "pooling": "max"}',
        422,
        "invalid_input",
    ),
    ("empty list", "POST", "/embed", JSON, b'{"inputs": []}', 422, "invalid_input"),
    (
        "too many items",
        "POST",
        "/embed",
        JSON,
        json.dumps({"inputs": ["a"] * 5}).encode(),
        422,
        "invalid_input",
    ),
    (
        "too many characters",
        "POST",
        "/embed",
        JSON,
        json.dumps({"inputs": "a" * 501}).encode(),
        422,
        "invalid_input",
    ),
    (
        "too many tokens, truncation off",
        "POST",
        "/embed",
        JSON,
        json.dumps({"inputs": LONG_TEXT}).encode(),
        422,
        "invalid_input",
    ),
    (
        "too many tokens, truncate false",
        "POST",
        "/embed",
        JSON,
        json.dumps({"inputs": LONG_TEXT, "truncate": False}).encode(),
        422,
        "invalid_input",
    ),
    (
        "bad truncation direction",
        "POST",
        "/embed",
        JSON,
        b'{"inputs": "a", "truncation_direction": "middle"}',
        422,
        "invalid_input",
    ),
    ("no mask token", "POST", "/fill-mask", JSON, b'{"inputs": "hello"}', 422, "invalid_input"),
    (
        "top_k zero",
        "POST",
        "/fill-mask",
        JSON,
        b'{"inputs": "a [MASK]", "top_k": 0}',
        422,
        "invalid_input",
    ),
    ("no classification head", "POST", "/classify", JSON, b'{"inputs": "a"}', 422, "invalid_input"),
    (
        "pairs, no classification head",
        "POST",
        "/classify",
        JSON,
        b'{"pairs": [["a", "b"]]}',
        422,
        "invalid_input",
    ),
    ("pair of one text", "POST", "/classify", JSON, b'{"pairs": [["a"]]}', 422, "invalid_input"),
    (
        "rerank, no cross-encoder",
        "POST",
        "/rerank",
        JSON,
        b'{"query": "a", "texts": ["b"]}',
        422,
        "invalid_input",
    ),
    ("rerank, no query", "POST", "/rerank", JSON, b'{"texts": ["b"]}', 422, "invalid_input"),
    (
        "inputs and pairs",
        "POST",
        "/classify",
        JSON,
        b'{"inputs": "a", "pairs": [["a", "b"]]}',
        422,
        "invalid_input",
    ),
    (
        "too many pairs",
        "POST",
        "/classify",
        JSON,
        json.dumps({"pairs": [["a", "b"]] * 5}).encode(),
        422,
        "invalid_input",
    ),
    (
        "pair's second text too long",
        "POST",
        "/classify",
        JSON,
        json.dumps({"pairs": [["a", "b" * 501]]}).encode(),
        422,
        "invalid_input",
    ),
    (
        "bad task",
        "POST",
        "/v1/models/bert:predict",
        JSON,
        b'{"instances": ["a"], "parameters": {"task": "x"}}',
        422,
        "invalid_input",
    ),
    (
        "v2 wrong datatype",
        "POST",
        "/v2/models/bert/infer",
        JSON,
        b'{"inputs": [{"name": "t", "shape": [1], "datatype": "FP32", "data": [1.0]}]}',
        422,
        "invalid_input",
    ),
    (
        "oversized body",
        "POST",
        "/embed",
        JSON,
        json.dumps({"inputs": ["a" * 400] * 4 * 8}).encode(),
        413,
        "payload_too_large",
    ),
    (
        "wrong content type",
        "POST",
        "/embed",
        {"Content-Type": "text/plain", **AUTH},
        b'{"inputs": "a"}',
        415,
        "unsupported_media_type",
    ),
    ("no content type", "POST", "/embed", AUTH, b'{"inputs": "a"}', 415, "unsupported_media_type"),
    (
        "unknown model v1",
        "POST",
        "/v1/models/gpt:predict",
        JSON,
        b'{"instances": ["a"]}',
        404,
        "not_found",
    ),
    (
        "unknown model v2",
        "POST",
        "/v2/models/gpt/infer",
        JSON,
        b'{"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}',
        404,
        "not_found",
    ),
    ("v2 no inputs", "POST", "/v2/models/bert/infer", JSON, b'{"inputs": []}', 422, None),
    (
        "unknown openai model",
        "POST",
        "/v1/embeddings",
        JSON,
        b'{"input": "a", "model": "gpt"}',
        404,
        "not_found",
    ),
    ("unknown route", "GET", "/nope", {}, b"", 404, "not_found"),
    (
        "missing api key",
        "POST",
        "/embed",
        {"Content-Type": "application/json"},
        b'{"inputs": "a"}',
        401,
        "unauthorized",
    ),
    (
        "wrong api key",
        "POST",
        "/embed",
        {"Content-Type": "application/json", "Authorization": "Bearer nope"},
        b'{"inputs": "a"}',
        401,
        "unauthorized",
    ),
    ("wrong method", "GET", "/embed", AUTH, b"", 405, "method_not_allowed"),
    # A number where a boolean belongs is refused, not read as false (strict JSON types).
    ("truncate 0", "POST", "/embed", JSON, b'{"inputs": "a", "truncate": 0}', 422, "invalid_input"),
    ("top_k as text", "POST", "/fill-mask", JSON, b'{"inputs": "a", "top_k": "5"}', 422, None),
    # msgspec decodes recursively: past ~900 levels it raises RecursionError, which was a 500.
    (
        "deeply nested json",
        "POST",
        "/embed",
        JSON,
        b'{"inputs": "a", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        400,
        "invalid_json",
    ),
    (
        "deeply nested parameters",
        "POST",
        "/v1/models/bert:predict",
        JSON,
        b'{"instances": ["a"], "parameters": {"a": ' + b"{" * 1500 + b"}" * 1500 + b"}}",
        400,
        "invalid_json",
    ),
    ("empty instances", "POST", "/v1/models/bert:predict", JSON, b'{"instances": []}', 422, None),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "error_type"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_gets_status_and_json_error_and_server_stays_up(
    server: RunningServer,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    error_type: str | None,
) -> None:
    response = httpx.request(
        method, f"{server.url}{path}", headers=headers, content=body, timeout=30
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if error_type is not None:
        assert error["type"] == error_type
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_health_metrics_and_metadata_stay_open_without_the_api_key(server: RunningServer) -> None:
    for path in ("/health", "/v2/health/live", "/v2/health/ready", "/metrics", "/v1/models/bert"):
        assert httpx.get(f"{server.url}{path}").status_code == 200, path


def test_unknown_fields_are_ignored_for_forward_compatibility(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/embed", headers=AUTH, json={"inputs": "a", "future": 1})
    assert response.status_code == 200


def test_a_request_may_ask_to_truncate_what_the_server_rejects(server: RunningServer) -> None:
    for body in ({"truncate": True}, {"truncate": True, "truncation_direction": "Left"}):
        response = httpx.post(
            f"{server.url}/embed", headers=AUTH, json={"inputs": LONG_TEXT, **body}
        )
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["tokens"] == 64  # cut to the model's 64 positions


def test_the_right_api_key_is_accepted(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/embed", headers=AUTH, json={"inputs": "hello"})
    assert response.status_code == 200


def test_errors_are_counted_by_type(server: RunningServer) -> None:
    httpx.post(f"{server.url}/embed", headers=AUTH, json={"inputs": []})
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'inference_errors_total{type="invalid_input"}' in metrics
    assert 'inference_requests_total{status="422"}' in metrics


def test_a_401_names_the_scheme_to_use(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/embed", json={"inputs": "a"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="bert-serve"'


def test_options_lists_every_method_a_path_answers(server: RunningServer) -> None:
    allowed = httpx.options(f"{server.url}/v1/models/bert:predict").headers["Allow"]
    assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in allowed.split(",")}
    allowed = httpx.options(f"{server.url}/embed").headers["Allow"]
    assert {"POST", "OPTIONS"} <= {m.strip() for m in allowed.split(",")}


def _count(server: RunningServer, status: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f'inference_requests_total{{status="{status}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no inference_requests_total for {status}")


def test_unknown_routes_and_wrong_methods_are_counted(server: RunningServer) -> None:
    before = _count(server, "404"), _count(server, "405")
    assert httpx.get(f"{server.url}/no/such/route").status_code == 404
    assert httpx.post(f"{server.url}/nope", headers=JSON, content=b"{}").status_code == 404
    assert httpx.get(f"{server.url}/embed", headers=AUTH).status_code == 405
    assert (_count(server, "404"), _count(server, "405")) == (before[0] + 2, before[1] + 1)
    # Probes and scrapes are not requests to count.
    health = _count(server, "200")
    httpx.get(f"{server.url}/health")
    assert _count(server, "200") == health
